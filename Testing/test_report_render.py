"""Case report pictures and HTML: lightbox slice choice, zone lines known by hand, a rendered report, the index page."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk


def lung_box_volume() -> tuple[sitk.Image, sitk.Image, sitk.Image]:
    """A 12-slice CT (1 mm, identity direction) with a right and a left box lung and one lesion at z 9.

    Returns (ct HU, lungs 0/1/2, lesions 0/1), all (x, y, z) = (40, 30, 12).
    """
    hu = np.full((12, 30, 40), 40.0, np.float32)
    lungs = np.zeros(hu.shape, np.uint8)
    lungs[:, 5:25, 4:18] = 1  # x < 20: the patient's right in LPS
    lungs[2:, 5:25, 22:36] = 2
    hu[lungs > 0] = -850.0
    lesions = np.zeros(hu.shape, np.uint8)
    lesions[9, 10:14, 8:12] = 1
    images = []
    for array in (hu, lungs, lesions):
        image = sitk.GetImageFromArray(array)
        image.SetSpacing((1.0, 1.0, 1.0))
        images.append(image)
    return tuple(images)


def test_zone_lines_sit_at_5_12_and_2_3_of_each_lung_height():
    from covidweak.report.figures import zone_boundaries
    from covidweak.zones import zone_map_3d

    _, lungs, _ = lung_box_volume()
    lines = zone_boundaries(zone_map_3d(lungs), sitk.GetArrayFromImage(lungs), j=15)
    # Right lung z 0..11: depth (11 - z) / 11 < 5/12 for z >= 7, < 2/3 for z >= 4.
    # Left lung z 2..11: depth (11 - z) / 9 < 5/12 for z >= 8, < 2/3 for z >= 6.
    assert lines == [(1, 6.5, 4, 17), (1, 3.5, 4, 17), (2, 7.5, 22, 35), (2, 5.5, 22, 35)]


def test_lightbox_spreads_over_lung_slices_and_keeps_the_worst_one():
    from covidweak.report.figures import lightbox_slices

    _, lungs, lesions = lung_box_volume()
    lung, lesion = sitk.GetArrayFromImage(lungs), sitk.GetArrayFromImage(lesions)
    assert lightbox_slices(lesion, lung, count=4).tolist() == [11, 9, 4, 0]  # 0, 4, 7, 11 with 7 swapped for 9
    assert lightbox_slices(lesion, lung, count=20).tolist() == list(range(11, -1, -1))
    assert lightbox_slices(np.zeros_like(lesion), lung, count=2).tolist() == [11, 0]


def test_pictures_show_the_lesion_in_red_and_the_zone_lines_in_yellow():
    from covidweak.report.figures import LIGHTBOX_TILES, TILE_PIXELS, ZONE_LINE_RGB, coronal_zones, lightbox

    ct, lungs, lesions = lung_box_volume()
    sheet = lightbox(ct, lesions, lungs)
    assert sheet.dtype == np.uint8 and sheet.shape[0] == 3 * (TILE_PIXELS + 2) and LIGHTBOX_TILES == 12
    reddish = (sheet[..., 0] > 150) & (sheet[..., 1] < 90)
    assert reddish.any()
    coronal = coronal_zones(ct, lesions, lungs)
    assert np.all(coronal == np.array(ZONE_LINE_RGB), axis=-1).any()
    assert ((coronal[..., 0] > 150) & (coronal[..., 1] < 90)).any(), "the coronal slice is the lesion's"


def test_report_renders_to_png_and_pdf_with_pictures_tables_and_note(tmp_path):
    pytest.importorskip("PySide6")
    from PIL import Image

    from covidweak.report.figures import lightbox
    from covidweak.report.html import CLINICAL_NOTE, Picture, Section, Table, case_report
    from COVIDBatchLib.render import render_pdf, render_png

    ct, lungs, lesions = lung_box_volume()
    Image.fromarray(lightbox(ct, lesions, lungs)).save(tmp_path / "lightbox.png")
    section = Section("Lesions", [Picture("Axial slices", "lightbox.png", "lesions in red")],
                      [Table("Involvement", ("region", "percent"), [["total", 1.25], ["right<upper>", 3.0]])], "1 lesion")
    models = [{"step": "COVIDWeakSeg", "method": "cam", "name": "cam-light", "sha256": "ab" * 32}]
    page = case_report("case <1>", [("Input", "/data/ct.nii.gz")], [section], models)
    assert page.count(CLINICAL_NOTE) == 2 and "case &lt;1&gt;" in page and "right&lt;upper&gt;" in page
    assert '<td class="num">1.25</td>' in page and "ab" * 32 in page
    (tmp_path / "report.html").write_text(page, encoding="utf-8")

    png = np.asarray(Image.open(render_png(tmp_path / "report.html", tmp_path / "report.png")).convert("RGB"))
    assert png.shape[1] == 900 and png.shape[0] > 3 * 162, "the lightbox image was laid out"
    assert np.all(png == (255, 243, 205), axis=-1).any(), "the note's yellow box is drawn"
    assert ((png[..., 0] > 150) & (png[..., 1] < 90) & (png[..., 2] < 90)).any(), "the lesion overlay is drawn"
    pdf = render_pdf(tmp_path / "report.html", tmp_path / "report.pdf")
    assert pdf.read_bytes().startswith(b"%PDF")


def test_index_page_escapes_links_and_sorts_without_network():
    from covidweak.report.html import index_page

    rows = [{"case_id": "a<b", "status": "done", "involvement_percent": 2.5, "report": "cases/a<b/report.html"},
            {"case_id": "c", "status": "failed", "involvement_percent": "", "report": ""}]
    page = index_page(("case_id", "status", "involvement_percent", "report"), rows)
    assert '<a href="cases/a&lt;b/report.html">a&lt;b</a>' in page
    assert '<tr class="failed"><td>c</td>' in page
    assert page.count('onclick="sortBy(this)"') == 3 and "function sortBy" in page and "src=" not in page
