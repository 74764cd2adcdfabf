"""Shared pytest fixtures: a small session phantom, a fresh real MRML scene, GPU skipping."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


SMALL_PHANTOM = dict(patients=4, studies_per_patient=2, seed=11, size=128, slices=32)
"""Big enough for one covid, cap and normal patient with a follow-up each; small enough for seconds."""


@pytest.fixture(scope="session")
def phantom_dir(tmp_path_factory):
    """A small phantom dataset on disk (manifest.csv plus one folder per study)."""
    from covidweak.phantom import PhantomConfig, generate_dataset

    out = tmp_path_factory.mktemp("phantom")
    params = dict(SMALL_PHANTOM)
    config = PhantomConfig(size=params.pop("size"), slices=params.pop("slices"))
    generate_dataset(out, config=config, mix={"covid": 0.5, "cap": 0.25, "normal": 0.25}, **params)
    return out


@pytest.fixture
def mrml_scene():
    """A fresh, real MRML scene from slicer-core, installed as ``slicer.mrmlScene`` for the test.

    ``slicer.util`` helpers use the global scene, as they do in the Slicer app.
    """
    import slicer

    scene = slicer.vtkMRMLScene()
    previous = getattr(slicer, "mrmlScene", None)
    slicer.mrmlScene = scene
    try:
        yield scene
    finally:
        scene.Clear(True)
        if previous is None:
            del slicer.mrmlScene
        else:
            slicer.mrmlScene = previous
