"""Headless batch runs of the Slicer modules' Logics over many CTs (``covidweak batch``, covid_batch.py).

:mod:`.cases` finds the cases, :mod:`.steps` holds one step per module,
:mod:`.runner` runs them (fresh scene per case, resumable, parallel),
:mod:`.scene_files` saves nodes and the .mrb bundle, :mod:`.manifest` the
per-case record that makes a rerun skip finished cases.
"""
