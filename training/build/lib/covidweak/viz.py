"""Montages of CT, masks and chest X-ray for screenshots, reports and the demo.

Display follows radiological convention: axial and coronal views show the patient's
right on the viewer's left; axial views put anterior at the top, coronal views and
radiographs put superior at the top. Images of any orientation are first resampled
onto LPS-aligned axes, so the convention holds for real CT as well as the phantom.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import SimpleITK as sitk
from PIL import Image, ImageDraw

from .errors import InputError

LUNG_WINDOW = (-1350.0, 150.0)
"""Lung window: level -600 HU, width 1500 HU."""
LESION_COLOURS = {1: (255, 220, 0), 2: (255, 120, 0), 3: (255, 40, 40)}
"""Outline colours for GGO, crazy-paving and consolidation."""
LUNG_COLOURS = {1: (0, 200, 255), 2: (80, 255, 120)}
PANEL_HEIGHT = 256


def lps_array(image: sitk.Image) -> tuple[np.ndarray, tuple[float, ...]]:
    """(z, y, x) array of an image reoriented so +x = patient left, +y = posterior, +z = superior,
    and its (x, y, z) spacing in mm after the reorientation."""
    if image.GetDimension() == 3:
        image = sitk.DICOMOrient(image, "LPS")
    return sitk.GetArrayFromImage(image), image.GetSpacing()


def window(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map ``values`` linearly from [low, high] to uint8 grey."""
    scaled = (np.asarray(values, dtype=np.float32) - low) / (high - low)
    return (np.clip(scaled, 0, 1) * 255).astype(np.uint8)


def _boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` (2-D bool) with a 4-neighbour outside it."""
    padded = np.pad(mask, 1)
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~interior


def outline(rgb: np.ndarray, labels: Optional[np.ndarray], colours: Mapping[int, tuple]) -> np.ndarray:
    """Draw the one-pixel boundary of each label of (rows, cols) ``labels`` in its colour onto ``rgb``."""
    if labels is None:
        return rgb
    for value, colour in colours.items():
        edge = _boundary(labels == value)
        rgb[edge] = colour
    return rgb


def _resize(array: np.ndarray, shape: tuple[int, int], nearest: bool) -> np.ndarray:
    mode = Image.NEAREST if nearest else Image.BILINEAR
    if array.dtype == np.uint8:
        return np.asarray(Image.fromarray(array).resize(shape[::-1], mode))
    return np.asarray(Image.fromarray(array.astype(np.float32), mode="F").resize(shape[::-1], mode))


def display_width(rows: int, cols: int, height: int, aspect: float) -> int:
    """Columns of a (rows, cols) view shown ``height`` rows high with ``aspect`` = row/col pixel size in mm."""
    return max(1, int(round(height * cols / (rows * aspect))))


def _panel(grey: np.ndarray, aspect: float, labels: Sequence[tuple[Optional[np.ndarray], Mapping]]) -> np.ndarray:
    """Scale a (rows, cols) uint8 view to PANEL_HEIGHT rows with ``aspect`` = row/col pixel size,
    then draw label outlines at display resolution so they stay one pixel thin."""
    shape = (PANEL_HEIGHT, display_width(*grey.shape, PANEL_HEIGHT, aspect))
    rgb = np.repeat(_resize(grey, shape, nearest=False)[..., None], 3, axis=2).copy()
    for lab, colours in labels:
        if lab is not None:
            rgb = outline(rgb, _resize(lab.astype(np.uint8), shape, nearest=True), colours)
    return rgb


def _pick(index_axis_sums: np.ndarray, fallback: int) -> int:
    return int(np.argmax(index_axis_sums)) if index_axis_sums.max() > 0 else fallback


def study_panels(
    ct: sitk.Image,
    lungs: Optional[sitk.Image] = None,
    lesions: Optional[sitk.Image] = None,
    cxr: Optional[sitk.Image] = None,
    cxr_lungs: Optional[sitk.Image] = None,
    axial_index: Optional[int] = None,
    coronal_index: Optional[int] = None,
) -> np.ndarray:
    """One montage row: axial CT, coronal CT and (if given) the radiograph, side by side.

    ct: 3-D HU image; lungs (0/1/2) and lesions (0-3) on the CT grid are outlined.
    The axial/coronal slices default to those with the most lesion (else lung) voxels.
    cxr: 2-D image (row 0 superior, column 0 patient right) covering the CT's field of
    view; the CT lesion mask projected front-to-back is outlined on it.
    Returns (PANEL_HEIGHT, W, 3) uint8.
    """
    hu, (sx, sy, sz) = lps_array(ct)
    lung = lps_array(lungs)[0] if lungs is not None else None
    lesion = lps_array(lesions)[0] if lesions is not None else None
    for name, lab in (("lungs", lung), ("lesions", lesion)):
        if lab is not None and lab.shape != hu.shape:
            raise InputError(f"{name} mask shape {lab.shape} differs from the CT {hu.shape}; pass masks on the CT grid")
    focus = lesion if lesion is not None and lesion.any() else lung
    if axial_index is None:
        axial_index = _pick((focus > 0).sum(axis=(1, 2)), hu.shape[0] // 2) if focus is not None else hu.shape[0] // 2
    if coronal_index is None:
        coronal_index = _pick((focus > 0).sum(axis=(0, 2)), hu.shape[1] // 2) if focus is not None else hu.shape[1] // 2
    lo, hi = LUNG_WINDOW
    overlays_ax = [(lung[axial_index] if lung is not None else None, LUNG_COLOURS),
                   (lesion[axial_index] if lesion is not None else None, LESION_COLOURS)]
    axial = _panel(window(hu[axial_index], lo, hi), sy / sx, overlays_ax)
    cor = lambda a: a[::-1, coronal_index, :] if a is not None else None  # noqa: E731 - superior at top
    coronal = _panel(window(cor(hu), lo, hi), sz / sx, [(cor(lung), LUNG_COLOURS), (cor(lesion), LESION_COLOURS)])
    panels = [axial, coronal]
    if cxr is not None:
        image = sitk.GetArrayFromImage(cxr).astype(np.float32)
        grey = window(image, float(image.min()), float(image.max()) if image.max() > image.min() else 1.0)
        projected = None
        if lesion is not None:
            projected = _resize(lesion.max(axis=1)[::-1].astype(np.uint8), image.shape, nearest=True)
        cxr_lab = sitk.GetArrayFromImage(cxr_lungs) if cxr_lungs is not None else None
        sp = cxr.GetSpacing()
        panels.append(_panel(grey, sp[1] / sp[0], [(cxr_lab, LUNG_COLOURS), (projected, LESION_COLOURS)]))
    gap = np.zeros((PANEL_HEIGHT, 4, 3), np.uint8)
    return np.concatenate([x for p in panels for x in (p, gap)][:-1], axis=1)


def montage(rows: Sequence[Any], titles: Optional[Sequence[str]] = None) -> np.ndarray:
    """Stack study rows into one RGB image (H, W, 3) uint8.

    Each row is a mapping with keys of :func:`study_panels` (``ct`` required) or any
    object with those attributes (a ``PhantomStudy``). ``titles`` label the rows.
    """
    keys = ("ct", "lungs", "lesions", "cxr", "cxr_lungs")
    images = []
    for row in rows:
        kwargs = {k: (row.get(k) if isinstance(row, Mapping) else getattr(row, k, None)) for k in keys}
        if kwargs["ct"] is None:
            raise InputError("each montage row needs a CT image ('ct')")
        images.append(study_panels(**kwargs))
    width = max(im.shape[1] for im in images)
    title_h = 18 if titles else 0
    out = np.zeros((sum(im.shape[0] + title_h + 4 for im in images), width, 3), np.uint8)
    y = 0
    canvas = Image.fromarray(out)
    draw = ImageDraw.Draw(canvas)
    for i, im in enumerate(images):
        if titles:
            draw.text((4, y + 3), str(titles[i]), fill=(255, 255, 255))
        y += title_h
        canvas.paste(Image.fromarray(im), (0, y))
        y += im.shape[0] + 4
    return np.asarray(canvas)


def save_png(rgb: np.ndarray, path, overwrite: bool = False) -> Path:
    """Write an (H, W, 3) uint8 array as PNG; refuses to replace a file unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"{path} already exists; choose another path or pass overwrite=True")
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(path)
    return path
