"""COVID-19 / CAP / normal diagnosis of a chest CT with Hu et al.'s multi-scale classifier (IEEE Access 2020).

* :mod:`.model`: the class lists (three-way and the three binary tasks) and the network builder;
* :mod:`.aggregate`: per-slice probabilities -> one probability per patient;
* :mod:`.predict`: a CT -> per-slice and per-patient probabilities, and the output files;
* :mod:`.metrics`: accuracy, precision, sensitivity, specificity, AUC and bootstrap intervals;
* :mod:`.evaluate`: Tables 3-4 of the paper on held-out patients.
"""
