"""The report's pictures: an axial lightbox with the lesion overlay and a coronal view with zone lines.

Both follow :mod:`covidweak.viz`'s radiological convention (images resampled onto
LPS axes; the patient's right on the viewer's left; anterior at the top of axial
tiles, superior at the top of the coronal view) and its lung window.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import SimpleITK as sitk
from PIL import Image, ImageDraw

from ..viz import LUNG_COLOURS, LUNG_WINDOW, display_width, lps_array, outline, window
from ..zones import LUNG_LABELS, zone_map_3d

LESION_RGB = np.array([255, 50, 40], dtype=np.float32)
LESION_ALPHA = 0.55
"""Strong enough to see small lesions, weak enough to read the CT texture underneath."""
ZONE_LINE_RGB = (255, 230, 0)
TILE_PIXELS = 160
LIGHTBOX_COLUMNS = 4
LIGHTBOX_TILES = 12


def blend(grey: np.ndarray, mask: Optional[np.ndarray]) -> np.ndarray:
    """(rows, cols) uint8 grey plus a bool mask -> (rows, cols, 3) uint8 with the mask tinted red."""
    rgb = np.repeat(grey[..., None], 3, axis=2).astype(np.float32)
    if mask is not None:
        rgb[mask] = (1 - LESION_ALPHA) * rgb[mask] + LESION_ALPHA * LESION_RGB
    return rgb.astype(np.uint8)


def scaled(rgb: np.ndarray, height: int, aspect: float) -> Image.Image:
    """``rgb`` resized to ``height`` rows, columns scaled so pixels show ``aspect`` = row/col mm."""
    return Image.fromarray(rgb).resize((display_width(*rgb.shape[:2], height, aspect), height), Image.NEAREST)


def lightbox_slices(lesion: np.ndarray, lungs: np.ndarray, count: int = LIGHTBOX_TILES) -> np.ndarray:
    """Up to ``count`` axial indices (into axis 0, LPS order) spread evenly over the slices with lung,
    always including the slice with the most lesion voxels; sorted superior first."""
    with_lung = np.flatnonzero(lungs.reshape(lungs.shape[0], -1).any(axis=1))
    if with_lung.size == 0:
        with_lung = np.arange(lungs.shape[0])
    picks = set(with_lung[np.linspace(0, with_lung.size - 1, min(count, with_lung.size)).round().astype(int)].tolist())
    per_slice = lesion.reshape(lesion.shape[0], -1).sum(axis=1)
    worst = int(per_slice.argmax())
    if per_slice.max() > 0 and worst not in picks:
        # Swap the pick nearest to the worst slice (the lower one on a tie) for it, so it is always shown.
        nearest = min(sorted(picks), key=lambda k: abs(k - worst))
        picks = (picks - {nearest}) | {worst}
    return np.array(sorted(picks, reverse=True))


def lightbox(ct: sitk.Image, lesions: sitk.Image, lungs: sitk.Image, columns: int = LIGHTBOX_COLUMNS,
             count: int = LIGHTBOX_TILES) -> np.ndarray:
    """Axial tiles of ``ct`` (HU) with ``lesions`` (> 0) tinted and ``lungs`` (0/1/2) outlined.

    All three on one grid. Each tile is labelled with its superior (RAS S)
    coordinate in mm, the position Slicer's slice views show. Returns (H, W, 3) uint8.
    """
    hu, lesion, lung = lps_array(ct)[0], lps_array(lesions)[0] > 0, lps_array(lungs)[0]
    oriented = sitk.DICOMOrient(ct, "LPS")
    sx, sy, sz = oriented.GetSpacing()
    tiles = []
    for k in lightbox_slices(lesion, lung, count):
        rgb = outline(blend(window(hu[k], *LUNG_WINDOW), lesion[k]), lung[k], LUNG_COLOURS)
        tile = scaled(rgb, TILE_PIXELS, sy / sx)
        superior_mm = oriented.GetOrigin()[2] + k * sz
        ImageDraw.Draw(tile).text((4, 3), f"S {superior_mm:.1f} mm", fill=(255, 255, 255))
        tiles.append(tile)
    width = max(t.width for t in tiles)
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * (width + 2), rows * (TILE_PIXELS + 2)))
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % columns) * (width + 2), (i // columns) * (TILE_PIXELS + 2)))
    return np.asarray(sheet)


def zone_boundaries(zones: np.ndarray, lungs: np.ndarray, j: int) -> list[tuple[int, float, int, int]]:
    """Zone lines of a (z, y, x) LPS zone map: ``(lung label, z between zones, x_min, x_max)``.

    Each lung has its own two lines (Kim et al. Sect. 2.2: per-lung split), at
    the lowest slice of its upper and of its middle zone, minus half a slice;
    they span the lung's width in coronal slice ``j`` (y index), where they are drawn.
    """
    lines = []
    for label in LUNG_LABELS:
        inside = lungs == label
        if not inside[:, j, :].any():
            continue
        xs = np.flatnonzero(inside[:, j, :].any(axis=0))
        for code in (1, 2):
            slices = np.flatnonzero((inside & (zones == code)).any(axis=(1, 2)))
            if slices.size:
                lines.append((label, float(slices.min()) - 0.5, int(xs.min()), int(xs.max())))
    return lines


def coronal_zones(ct: sitk.Image, lesions: sitk.Image, lungs: sitk.Image, height: int = 2 * TILE_PIXELS) -> np.ndarray:
    """The coronal slice with most lesion (else lung) voxels, lesions tinted, lungs outlined and the
    per-lung upper/middle/lower zone lines of :func:`covidweak.zones.zone_map_3d` drawn. (H, W, 3) uint8."""
    hu, lesion, lung = lps_array(ct)[0], lps_array(lesions)[0] > 0, lps_array(lungs)[0]
    zones = sitk.GetArrayFromImage(sitk.DICOMOrient(_as_image(zone_map_3d(lungs), lungs), "LPS"))
    focus = lesion if lesion.any() else lung > 0
    j = int(focus.sum(axis=(0, 2)).argmax())
    sx, _, sz = lps_array(ct)[1]
    flip = lambda a: a[::-1, j, :]  # noqa: E731 - superior at the top
    rgb = outline(blend(window(flip(hu), *LUNG_WINDOW), flip(lesion)), flip(lung), LUNG_COLOURS)
    picture = scaled(rgb, height, sz / sx)
    draw = ImageDraw.Draw(picture)
    rows = hu.shape[0]
    to_x = picture.width / hu.shape[2]
    to_y = height / rows
    for _, z, x0, x1 in zone_boundaries(zones, lung, j):
        y = (rows - 0.5 - z) * to_y  # z is a half-integer: the edge between two slices
        draw.line([(x0 * to_x, y), ((x1 + 1) * to_x, y)], fill=ZONE_LINE_RGB, width=2)
    return np.asarray(picture)


def _as_image(array: np.ndarray, like: sitk.Image) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(like)
    return image
