"""SimpleITK <-> MRML nodes keep every voxel at its RAS position, through files and MRML storage."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from covidweak.errors import InputError
from covidweak.io import read_image, write_image
from covidweak.slicer.mrml import (
    image_from_volume_node,
    labels_from_segmentation_node,
    segmentation_node_from_labels,
    volume_node_from_image,
)

MARKER_INDEX = (13, 5, 7)  # (i, j, k) = (x, y, z)
MARKER_VALUE = 3000
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def oblique_volume() -> sitk.Image:
    """int16, numpy shape (z, y, x) = (12, 16, 20), anisotropic spacing, rotated about an oblique axis."""
    rng = np.random.default_rng(7)
    array = rng.integers(-1000, 200, size=(12, 16, 20)).astype(np.int16)
    i, j, k = MARKER_INDEX
    array[k, j, i] = MARKER_VALUE
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.6, 0.85, 3.0))
    image.SetOrigin((112.4, -37.9, 520.25))
    rotation = sitk.VersorTransform((0.3, -0.5, 0.81), 0.6)  # axis, angle (rad): no axis stays aligned
    image.SetDirection(rotation.GetMatrix())
    return image


def marker_ras(image: sitk.Image) -> np.ndarray:
    """The marker's RAS position, from SimpleITK's own index-to-LPS mapping."""
    return LPS_TO_RAS @ np.asarray(image.TransformIndexToPhysicalPoint(MARKER_INDEX))


def assert_marker_at(image: sitk.Image, ras: np.ndarray):
    index = image.TransformPhysicalPointToIndex((LPS_TO_RAS @ ras).tolist())
    assert tuple(index) == MARKER_INDEX
    assert image[index] == MARKER_VALUE
    array = sitk.GetArrayViewFromImage(image)
    assert tuple(np.unravel_index(np.argmax(array), array.shape))[::-1] == MARKER_INDEX


def node_voxel_of(node, ras: np.ndarray) -> tuple[int, int, int]:
    """Voxel index that the node's own RASToIJK matrix gives for a RAS point."""
    import vtk

    matrix = vtk.vtkMatrix4x4()
    node.GetRASToIJKMatrix(matrix)
    ijk = matrix.MultiplyPoint((*ras, 1.0))[:3]
    assert np.allclose(ijk, np.round(ijk), atol=1e-3)
    return tuple(int(round(v)) for v in ijk)


def test_oblique_volume_is_really_oblique():
    direction = np.reshape(oblique_volume().GetDirection(), (3, 3))
    assert np.all(np.abs(direction) > 0.05)  # no axis-aligned column: a rotation, not flips


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd"])
def test_marker_stays_at_its_ras_point_file_to_node_to_file(tmp_path, mrml_scene, suffix):
    import slicer

    original = oblique_volume()
    ras = marker_ras(original)
    source = write_image(original, tmp_path / f"in{suffix}")

    node = volume_node_from_image(read_image(source), scene=mrml_scene, name="CT")
    assert node_voxel_of(node, ras) == MARKER_INDEX
    i, j, k = MARKER_INDEX
    assert slicer.util.arrayFromVolume(node)[k, j, i] == MARKER_VALUE

    target = write_image(image_from_volume_node(node), tmp_path / "out" / f"back{suffix}")
    back = sitk.ReadImage(str(target))
    assert_marker_at(back, ras)
    np.testing.assert_allclose(back.GetDirection(), original.GetDirection(), atol=1e-5)
    np.testing.assert_allclose(back.GetSpacing(), original.GetSpacing(), atol=1e-5)


@pytest.mark.parametrize("suffix", [".nrrd", ".nii.gz"])
def test_node_saved_by_mrml_storage_reads_back_at_the_same_ras(tmp_path, mrml_scene, suffix):
    import slicer

    original = oblique_volume()
    ras = marker_ras(original)
    node = volume_node_from_image(original, scene=mrml_scene, name="CT")
    storage = mrml_scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    path = tmp_path / f"saved{suffix}"
    storage.SetFileName(str(path))
    assert storage.WriteData(node)

    assert_marker_at(read_image(path), ras)

    loaded = mrml_scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "Loaded")
    reader = mrml_scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    reader.SetFileName(str(path))
    assert reader.ReadData(loaded)
    assert node_voxel_of(loaded, ras) == MARKER_INDEX
    i, j, k = MARKER_INDEX
    assert slicer.util.arrayFromVolume(loaded)[k, j, i] == MARKER_VALUE


def test_new_nodes_never_replace_existing_ones(mrml_scene):
    first = volume_node_from_image(oblique_volume(), scene=mrml_scene, name="CT")
    before = sitk.GetArrayFromImage(image_from_volume_node(first))
    second = volume_node_from_image(sitk.GetImageFromArray(np.zeros((4, 5, 6), np.int16)), scene=mrml_scene, name="CT")
    assert first.GetID() != second.GetID()
    assert first.GetName() == "CT" and second.GetName() != "CT"
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image_from_volume_node(first)), before)
    assert mrml_scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode") == 2


def test_default_scene_is_slicer_mrml_scene(mrml_scene):
    node = volume_node_from_image(oblique_volume())
    assert mrml_scene.IsNodePresent(node)


def test_labelmap_node(mrml_scene):
    labels = sitk.GetImageFromArray(np.array([[[0, 1, 2]] * 3] * 2, dtype=np.float32))
    node = volume_node_from_image(labels, scene=mrml_scene, name="Lungs", labelmap=True)
    assert node.IsA("vtkMRMLLabelMapVolumeNode")
    back = image_from_volume_node(node)
    assert back.GetPixelID() == sitk.sitkUInt8
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(labels))
    with pytest.raises(InputError, match="whole numbers"):
        volume_node_from_image(labels * 0.5, scene=mrml_scene, labelmap=True)


def test_two_d_image_becomes_a_one_slice_volume(mrml_scene):
    image = sitk.GetImageFromArray(np.arange(30, dtype=np.float32).reshape(5, 6))
    image.SetSpacing((0.2, 0.3))
    back = image_from_volume_node(volume_node_from_image(image, scene=mrml_scene))
    assert back.GetSize() == (6, 5, 1)
    np.testing.assert_allclose(back.GetSpacing()[:2], (0.2, 0.3))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back)[0], sitk.GetArrayFromImage(image))


def test_transformed_node_is_refused(mrml_scene):
    node = volume_node_from_image(oblique_volume(), scene=mrml_scene, name="CT")
    transform = mrml_scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "Shift")
    node.SetAndObserveTransformNodeID(transform.GetID())
    with pytest.raises(InputError, match="'CT' is under transform 'Shift': harden the transform"):
        image_from_volume_node(node)


def test_empty_node_is_refused(mrml_scene):
    node = mrml_scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "Empty")
    with pytest.raises(InputError, match="holds no image data"):
        image_from_volume_node(node)


NAMES = {1: "Right lung", 2: "Left lung", 3: "Trachea"}
COLORS = {1: (0.5, 0.7, 0.3), 2: (0.3, 0.5, 0.9), 3: (0.9, 0.9, 0.2)}


def lung_labels() -> sitk.Image:
    """uint8 labels 0/1/2 (no 3) on the oblique grid, shape (z, y, x) = (12, 16, 20)."""
    reference = oblique_volume()
    array = np.zeros((12, 16, 20), np.uint8)
    array[2:10, 3:13, 2:9] = 1
    array[3:11, 4:12, 11:18] = 2
    labels = sitk.GetImageFromArray(array)
    labels.CopyInformation(reference)
    return labels


def test_segmentation_round_trip_keeps_labels_and_geometry(mrml_scene):
    labels = lung_labels()
    node = segmentation_node_from_labels(labels, NAMES, COLORS, scene=mrml_scene, name="Lungs")
    segmentation = node.GetSegmentation()
    assert [segmentation.GetNthSegment(i).GetName() for i in range(3)] == list(NAMES.values())
    right = segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName("Right lung"))
    np.testing.assert_allclose(right.GetColor(), COLORS[1])

    back = labels_from_segmentation_node(node, NAMES)
    assert back.GetSize() == labels.GetSize()
    np.testing.assert_allclose(back.GetOrigin(), labels.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(back.GetDirection(), labels.GetDirection(), atol=1e-6)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(labels))


def test_segmentation_exports_in_reference_volume_geometry(mrml_scene):
    volume = volume_node_from_image(oblique_volume(), scene=mrml_scene, name="CT")
    labels = lung_labels()
    node = segmentation_node_from_labels(labels, NAMES, COLORS, scene=mrml_scene, reference_volume=volume)
    back = labels_from_segmentation_node(node, {1: "Right lung", 2: "Left lung"}, reference_volume=volume)
    assert back.GetSize() == labels.GetSize()
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(labels))
    # Values follow the names mapping, not the segment order.
    swapped = labels_from_segmentation_node(node, {2: "Right lung", 1: "Left lung"})
    np.testing.assert_array_equal(sitk.GetArrayFromImage(swapped) == 2, sitk.GetArrayFromImage(labels) == 1)


def test_segmentation_refuses_unnamed_labels_and_missing_segments(mrml_scene):
    with pytest.raises(InputError, match=r"label values \[2\] have no segment name"):
        segmentation_node_from_labels(lung_labels(), {1: "Right lung"}, COLORS, scene=mrml_scene)
    node = segmentation_node_from_labels(lung_labels(), NAMES, COLORS, scene=mrml_scene)
    with pytest.raises(InputError, match="no segment named Liver"):
        labels_from_segmentation_node(node, {1: "Liver"})
    default = labels_from_segmentation_node(node)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(default), sitk.GetArrayFromImage(lung_labels()))


def test_segmentation_exports_into_a_larger_reference_grid(mrml_scene):
    labels = lung_labels()
    padded = sitk.ConstantPad(labels, (2, 3, 1), (1, 2, 2), 0)  # same voxels, wider extent, moved origin
    volume = volume_node_from_image(sitk.Cast(padded, sitk.sitkInt16), scene=mrml_scene, name="Wide")
    node = segmentation_node_from_labels(labels, NAMES, COLORS, scene=mrml_scene)
    back = labels_from_segmentation_node(node, NAMES, reference_volume=volume)
    assert back.GetSize() == padded.GetSize()
    np.testing.assert_allclose(back.GetOrigin(), padded.GetOrigin(), atol=1e-4)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(padded))


def test_lesion_free_segmentation_is_written_and_read_back(mrml_scene, tmp_path):
    """A CT without lesion gives all-zero labels: the node still has its segments and a .seg.nrrd file."""
    from COVIDBatchLib.scene_files import save_node

    empty = sitk.Image(lung_labels().GetSize(), sitk.sitkUInt8)
    empty.CopyInformation(lung_labels())
    node = segmentation_node_from_labels(empty, NAMES, COLORS, scene=mrml_scene, name="No lesion")
    assert node.GetSegmentation().GetNumberOfSegments() == len(NAMES)
    path = save_node(node, tmp_path / "empty.seg.nrrd")
    assert path.is_file()
    back = labels_from_segmentation_node(node, NAMES)
    assert back.GetSize() == empty.GetSize() and not sitk.GetArrayViewFromImage(back).any()
