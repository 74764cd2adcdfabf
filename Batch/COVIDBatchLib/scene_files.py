"""Saving a case's MRML nodes as files and the whole scene as a Slicer bundle (.mrb).

Each node gets a storage node pointing at a file in the case folder and is
written there (volumes .nii.gz/.nrrd, segmentations .seg.nrrd, tables .tsv,
ROI markups .json). ``vtkMRMLScene::WriteToMRB`` then zips the scene file
and every node's data, the layout Slicer's "Save scene as bundle" writes, so a
radiologist opens the case by dragging the .mrb into Slicer. It works on the
pip ``slicer-core`` scene too; reading a bundle back there needs a data-IO
manager with a cache folder, which the Slicer application normally provides.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from covidweak.errors import InputError

ROI_STORAGE_CLASS = "vtkMRMLMarkupsROIJsonStorageNode"
"""slicer-core has no Markups module logic to pick a default storage node for ROIs, so it is named here."""


def save_node(node, path: Path) -> Path:
    """Write ``node``'s data to ``path`` through a storage node of its own (created when absent)."""
    scene = node.GetScene()
    storage = node.GetStorageNode()
    if storage is None and node.IsA("vtkMRMLMarkupsROINode"):
        storage = scene.AddNewNodeByClass(ROI_STORAGE_CLASS)
        node.SetAndObserveStorageNodeID(storage.GetID())
    elif storage is None:
        node.AddDefaultStorageNode()
        storage = node.GetStorageNode()
    if storage is None:
        raise InputError(f"node '{node.GetName()}' ({node.GetClassName()}) cannot be saved to a file")
    storage.SetFileName(str(path))
    if not storage.WriteData(node):
        raise InputError(f"could not write '{node.GetName()}' to {path}: check the folder is writable and has space")
    return Path(path)


def write_bundle(scene, path: Path) -> Path:
    """The whole scene as a Slicer bundle ``path`` (.mrb): scene file plus every node's data, zipped."""
    path = Path(path)
    if path.suffix.lower() != ".mrb":
        raise InputError(f"{path.name}: a scene bundle must end in .mrb")
    if not scene.WriteToMRB(str(path)):
        raise InputError(f"could not write the scene bundle {path}: check the folder is writable and has space")
    return path


def read_bundle(path: Path):
    """A new scene loaded from the bundle at ``path`` (works without the Slicer application)."""
    import slicer

    scene = slicer.vtkMRMLScene()
    cache = slicer.vtkCacheManager()
    # The cache folder is only needed while reading: every node's data is in memory afterwards.
    with tempfile.TemporaryDirectory(prefix="covidweak-mrb-") as cache_dir:
        cache.SetRemoteCacheDirectory(cache_dir)
        io_manager = slicer.vtkDataIOManager()
        io_manager.SetCacheManager(cache)
        scene.SetDataIOManager(io_manager)
        scene.SetCacheManager(cache)
        if not scene.ReadFromMRB(str(path)):
            raise InputError(f"cannot read the scene bundle {path}: the file is damaged; run the case again")
    return scene
