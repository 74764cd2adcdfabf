"""Headless batch runs of the Slicer modules' Logics over many CTs (``covidweak batch``, covid_batch.py).

:mod:`.cases` finds the cases, :mod:`.steps` holds one step per module,
:mod:`.runner` runs them (fresh scene per case, resumable, parallel),
:mod:`.scene_files` saves nodes and the .mrb bundle, :mod:`.manifest` the
per-case record that makes a rerun skip finished cases, :mod:`.render` prints a
report to PDF and :mod:`.command` is the ``batch`` subcommand.

It lives in the extension, beside the module Logics it runs, and not in ``covidweak``: it
imports ``COVIDWeakSegLib`` and the others as ordinary packages. Inside Slicer they sit
together in the scripted-modules folder; with pip they come with the extension's
distribution (``pip install -e .`` in the repository, after ``pip install ./training``).
"""
