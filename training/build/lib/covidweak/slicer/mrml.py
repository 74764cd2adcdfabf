"""SimpleITK images <-> MRML volume and segmentation nodes, with exact geometry.

Geometry. The IJKToRAS matrix of a node is :func:`covidweak.io.ras.ijk_to_ras_matrix` of the image.
Voxels need no reordering: a numpy view of either side is (k, j, i) = (z, y, x).

Transforms. A node under a parent transform is refused rather than silently
hardened: hardening a non-linear transform resamples the volume, which the user
should choose to do (Data module: right-click the node, "Harden transform").

Nodes. New nodes are always added with a fresh unique name
(``scene.GenerateUniqueName``); existing nodes are never replaced or modified.

``slicer`` is imported inside the functions so this module imports without Slicer;
it works both inside the Slicer application and with the PyPI ``slicer-core`` package.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..io.ras import ijk_to_ras_matrix, set_geometry_from_ijk_to_ras

def _vtk_matrix(array: np.ndarray):
    import vtk

    matrix = vtk.vtkMatrix4x4()
    for row in range(4):
        for column in range(4):
            matrix.SetElement(row, column, float(array[row, column]))
    return matrix


def _numpy_matrix(matrix) -> np.ndarray:
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def _as_3d(image: sitk.Image) -> sitk.Image:
    """3-D images unchanged; a 2-D image as a one-slice volume (how Slicer shows radiographs)."""
    if image.GetDimension() == 3:
        return image
    if image.GetDimension() == 2:
        return sitk.JoinSeries(image)
    raise InputError(f"cannot show a {image.GetDimension()}-D image as a volume: give a 2-D or 3-D image")


def _scene(scene):
    import slicer

    if scene is not None:
        return scene
    scene = getattr(slicer, "mrmlScene", None)
    if scene is None:
        raise InputError("no MRML scene: pass scene= or run inside Slicer")
    return scene


def _label_pixels(image: sitk.Image) -> sitk.Image:
    """An integer copy-free-when-possible version of a label image; refuses fractional labels."""
    if image.GetPixelID() in (sitk.sitkUInt8, sitk.sitkInt8, sitk.sitkUInt16, sitk.sitkInt16, sitk.sitkInt32, sitk.sitkUInt32):
        return image
    view = sitk.GetArrayViewFromImage(image)
    if not np.all(np.isfinite(view)) or not np.array_equal(view, np.round(view)):
        raise InputError("a label map must hold whole numbers: round or threshold the image before showing it as labels")
    low, high = float(view.min()), float(view.max())
    if low < -(2**31) or high >= 2**31:
        raise InputError(f"label values {low:g}..{high:g} do not fit a label map: renumber the labels")
    return sitk.Cast(image, sitk.sitkInt32 if low < 0 or high > 255 else sitk.sitkUInt8)


def _check_not_transformed(node) -> None:
    parent = node.GetParentTransformNode()
    if parent is not None:
        raise InputError(
            f"'{node.GetName()}' is under transform '{parent.GetName()}': harden the transform (Data module, "
            "right-click, Harden transform) or remove it, then try again"
        )


def volume_node_from_image(image: sitk.Image, scene=None, name: str = "", labelmap: bool = False):
    """Add a new volume node holding ``image`` (2-D or 3-D, one channel) to ``scene``.

    ``scene`` None means ``slicer.mrmlScene``. ``labelmap`` True creates a
    vtkMRMLLabelMapVolumeNode (whole-number voxels required), else a
    vtkMRMLScalarVolumeNode. The node gets a unique name derived from ``name``
    and default display nodes. Voxels are copied once, into VTK.
    """
    import slicer

    scene = _scene(scene)
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError("only single-channel images can be shown as scalar volumes: convert colour images to grayscale")
    image = _as_3d(image)
    if labelmap:
        image = _label_pixels(image)
    view = sitk.GetArrayViewFromImage(image)
    if view.dtype == np.int64 or view.dtype == np.uint64:
        raise InputError("64-bit integer volumes cannot be shown in Slicer: cast the image to 32-bit first")
    node_class = "vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode"
    node = scene.AddNewNodeByClass(node_class, scene.GenerateUniqueName(name or ("Labels" if labelmap else "Volume")))
    try:
        slicer.util.updateVolumeFromArray(node, view)
        node.SetIJKToRASMatrix(_vtk_matrix(ijk_to_ras_matrix(image)))
        node.CreateDefaultDisplayNodes()
    except Exception:
        scene.RemoveNode(node)  # ours, half-built: leave the scene as it was
        raise
    return node


def image_from_volume_node(node) -> sitk.Image:
    """A SimpleITK image (a copy) with the node's voxels and exact geometry, in LPS.

    Raises :class:`InputError` for a node without voxels, a multi-channel
    node, or a node under a parent transform (see the module notes).
    """
    import slicer
    import vtk

    _check_not_transformed(node)
    if node.GetImageData() is None:
        raise InputError(f"volume '{node.GetName()}' holds no image data: load or compute the volume first")
    array = slicer.util.arrayFromVolume(node)
    if array.ndim != 3:
        raise InputError(f"volume '{node.GetName()}' has several components per voxel: choose a scalar volume")
    image = sitk.GetImageFromArray(array)
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return set_geometry_from_ijk_to_ras(image, _numpy_matrix(matrix))


def oriented_image_from_image(image: sitk.Image, voxels: Optional[np.ndarray] = None):
    """A vtkOrientedImageData with ``image``'s geometry and ``voxels`` (default: its own), shape (z, y, x)."""
    import slicer
    import vtk.util.numpy_support as vtk_np

    voxels = sitk.GetArrayViewFromImage(image) if voxels is None else voxels
    oriented = slicer.vtkOrientedImageData()
    oriented.SetDimensions(*image.GetSize())
    oriented.SetImageToWorldMatrix(_vtk_matrix(ijk_to_ras_matrix(image)))
    scalars = vtk_np.numpy_to_vtk(np.ascontiguousarray(voxels).ravel(), deep=True)
    oriented.GetPointData().SetScalars(scalars)
    return oriented


def image_from_oriented_image(oriented) -> sitk.Image:
    """A SimpleITK copy of a vtkOrientedImageData; a non-zero extent start moves the origin."""
    import vtk
    import vtk.util.numpy_support as vtk_np

    x0, x1, y0, y1, z0, z1 = oriented.GetExtent()
    shape = (z1 - z0 + 1, y1 - y0 + 1, x1 - x0 + 1)
    voxels = vtk_np.vtk_to_numpy(oriented.GetPointData().GetScalars()).reshape(shape)
    image = sitk.GetImageFromArray(voxels)
    matrix = vtk.vtkMatrix4x4()
    oriented.GetImageToWorldMatrix(matrix)
    ijk_to_ras = _numpy_matrix(matrix)
    ijk_to_ras[:3, 3] = ijk_to_ras[:3, :3] @ np.array([x0, y0, z0]) + ijk_to_ras[:3, 3]
    return set_geometry_from_ijk_to_ras(image, ijk_to_ras)


def segmentation_node_from_labels(
    label_image: sitk.Image,
    names: dict[int, str],
    colors: dict[int, tuple[float, float, float]],
    scene=None,
    name: str = "",
    reference_volume=None,
):
    """Add a new segmentation node with one segment per entry of ``names``.

    ``label_image``: 3-D integer labels, shape (z, y, x) in numpy terms; every
    non-zero value must appear in ``names`` (so no label is dropped silently).
    ``colors``: RGB in 0..1 per label. A label in ``names`` with no voxels
    still gets an (empty) segment, so segment names are predictable.
    ``reference_volume``: volume node whose geometry the segmentation adopts
    for editing and export; default is ``label_image``'s own geometry.
    """
    import slicer

    scene = _scene(scene)
    label_image = _label_pixels(_as_3d(label_image))
    voxels = sitk.GetArrayViewFromImage(label_image)
    present = set(np.unique(voxels).tolist()) - {0}
    unnamed = sorted(present - set(names))
    if unnamed:
        raise InputError(f"label values {unnamed} have no segment name: add them to names or zero them first")
    missing_colors = sorted(set(names) - set(colors))
    if missing_colors:
        raise InputError(f"labels {missing_colors} have no colour: add them to colors")
    if reference_volume is not None:
        _check_not_transformed(reference_volume)

    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", scene.GenerateUniqueName(name or "Segmentation"))
    node.SetSourceRepresentationToBinaryLabelmap()
    segmentation = node.GetSegmentation()
    for value in sorted(names):
        color = tuple(float(c) for c in colors[value])
        # An absent label gets an all-zero labelmap rather than AddEmptySegment: with no labelmap in
        # the segmentation yet (a lesion-free CT), AddEmptySegment cannot build the representation
        # and the node can then not be written to a .seg.nrrd.
        mask = oriented_image_from_image(label_image, (voxels == value).astype(np.uint8))
        node.AddSegmentFromBinaryLabelmapRepresentation(mask, names[value], color)
    # Separate layers per segment would cost one full-size mask each; lung and lesion labels never overlap.
    segmentation.CollapseBinaryLabelmaps(False)
    if reference_volume is not None:
        node.SetReferenceImageGeometryParameterFromVolumeNode(reference_volume)
    else:
        converter = slicer.vtkSegmentationConverter
        shape = oriented_image_from_image(label_image, np.zeros(voxels.shape, np.uint8))
        segmentation.SetConversionParameter(
            converter.GetReferenceImageGeometryParameterName(), converter.SerializeImageGeometry(shape)
        )
    node.CreateDefaultDisplayNodes()
    return node


def labels_from_segmentation_node(segmentation_node, names: Optional[dict[int, str]] = None, reference_volume=None) -> sitk.Image:
    """A label image (uint8 when the values fit, else int16) from a segmentation node.

    ``names``: {label value: segment name}; each named segment must exist and
    is written with its value. None writes every segment, in order, as 1..N.
    ``reference_volume``: the output takes this volume's exact geometry;
    default is the segmentation's reference geometry (the label image it was
    made from, or the volume it was drawn on).
    """
    import slicer
    import vtk

    _check_not_transformed(segmentation_node)
    segmentation = segmentation_node.GetSegmentation()
    if names is None:
        ids = [segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments())]
        values = list(range(1, len(ids) + 1))
    else:
        values = sorted(names)
        ids = [segmentation.GetSegmentIdBySegmentName(names[value]) for value in values]
        absent = [names[value] for value, segment_id in zip(values, ids) if not segment_id]
        if absent:
            raise InputError(
                f"segmentation '{segmentation_node.GetName()}' has no segment named {', '.join(absent)}: "
                "rename the segment or choose another segmentation"
            )
    if not ids:
        raise InputError(f"segmentation '{segmentation_node.GetName()}' has no segments: add a segment first")
    if reference_volume is not None:
        _check_not_transformed(reference_volume)
        geometry = slicer.vtkOrientedImageData()
        geometry.SetExtent(reference_volume.GetImageData().GetExtent())
        matrix = vtk.vtkMatrix4x4()
        reference_volume.GetIJKToRASMatrix(matrix)
        geometry.SetImageToWorldMatrix(matrix)
    else:
        geometry = slicer.vtkOrientedImageData()
        serialized = segmentation.GetConversionParameter(slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName())
        if not serialized or not slicer.vtkSegmentationConverter.DeserializeImageGeometry(serialized, geometry, False):
            raise InputError(
                f"segmentation '{segmentation_node.GetName()}' has no reference geometry: pass reference_volume"
            )
    id_array = vtk.vtkStringArray()
    value_array = vtk.vtkIntArray()
    for segment_id, value in zip(ids, values):
        id_array.InsertNextValue(segment_id)
        value_array.InsertNextValue(value)
    merged = slicer.vtkOrientedImageData()
    if not segmentation_node.GenerateMergedLabelmapForAllSegments(
        merged, slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY, geometry, id_array, value_array
    ):
        raise InputError(f"could not export segmentation '{segmentation_node.GetName()}' to labels")
    image = image_from_oriented_image(merged)
    return sitk.Cast(image, sitk.sitkUInt8) if 0 <= min(values) and max(values) <= 255 else image


def on_volume_grid(image: sitk.Image, reference: sitk.Image, name: str,
                   tolerance_mm: float = 1e-3) -> sitk.Image:
    """``image`` (a command's output read from disk) with ``reference``'s exact geometry.

    NIfTI stores geometry in float32, so an output read back differs from the
    input in the last digits; after checking it is the same grid (within
    ``tolerance_mm``), the input's numbers are copied so new nodes get the
    input's IJKToRAS exactly. A 2-D output of a one-slice input is stacked.
    Raises :class:`InputError` naming ``name`` for another grid.
    """
    if image.GetDimension() == 2 and reference.GetDimension() == 3:
        image = sitk.JoinSeries(image)
    same = (image.GetSize() == reference.GetSize()
            and np.allclose(image.GetSpacing(), reference.GetSpacing(), atol=tolerance_mm)
            and np.allclose(image.GetOrigin(), reference.GetOrigin(), atol=tolerance_mm)
            and np.allclose(image.GetDirection(), reference.GetDirection(), atol=1e-5))
    if not same:
        raise InputError(f"{name} is not on the input's grid: the output folder belongs to another image; "
                         "run the command again on this volume")
    image.CopyInformation(reference)
    return image


def ras_of_ijk(volume_node, ijk) -> tuple[float, float, float]:
    """RAS position (mm) of continuous voxel index ``ijk`` = (i, j, k) of a volume node."""
    import vtk

    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(matrix)
    ras = _numpy_matrix(matrix) @ np.array([*[float(v) for v in ijk], 1.0])
    return tuple(float(v) for v in ras[:3])
