"""Lesion branch of Wu et al.'s framework: lesion activation maps, lesion features and lesion-type clusters.

* :mod:`.lam` -- Grad-CAM LAHm, Otsu + 4-connected components, LAM and lesion features (Sect. 3.2);
* :mod:`.hitrate` -- the lesion hit rate of Sect. 4.3.2 (Tables 5-6);
* :mod:`.kmeans` -- k-means, the elbow rule for K and the lesion score of Eq. 10;
* :mod:`.embedding` -- truncated SVD + t-SNE display coordinates (Fig. 9);
* :mod:`.matching` -- clusters against known lesion types (Table 7);
* :mod:`.ct` -- whole CTs: slices, predictions and the lesions they hold;
* :mod:`.store` -- the fitted cluster model folder and lesions.csv;
* :mod:`.library` -- fit on a library of studies, apply to a new CT;
* :mod:`.evaluate` -- diagnosis accuracy and Tables 5-7 for ``covidweak evaluate fecnn``.
"""
