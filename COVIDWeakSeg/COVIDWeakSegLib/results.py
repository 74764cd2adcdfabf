"""A ``SegmentResult`` turned into what the panel shows: table rows, summary lines, box geometry."""

from __future__ import annotations

SUMMARY_COLUMNS = ("region", "lung_ml", "lesion_ml", "percent")


def on_ct_grid(result, ct):
    """``result`` with the CT's exact geometry stamped on its images (see :func:`covidweak.slicer.mrml.on_volume_grid`:
    NIfTI stores geometry in float32, so the child's outputs differ from the CT in the last digits)."""
    from covidweak.slicer.mrml import on_volume_grid

    for key in ("probability", "mask", "lungs"):
        setattr(result, key, on_volume_grid(getattr(result, key), ct, f"the inference output '{key}'"))
    return result


def lesion_rows(lesions: list[dict]) -> tuple[tuple[str, ...], list[list]]:
    """Columns and rows of the lesion table, exactly those of lesions.csv."""
    from covidweak.weakseg.lesions import LESION_COLUMNS

    return LESION_COLUMNS, [[row[column] for column in LESION_COLUMNS] for row in lesions]


def summary_rows(summary: dict) -> tuple[tuple[str, ...], list[list]]:
    """One row per region of ``summary["involvement"]`` (total, each lung, each lung zone)."""
    involvement = summary.get("involvement", {})
    rows = [[region, float(v["lung_ml"]), float(v["lesion_ml"]), float(v["percent"])]
            for region, v in involvement.items()]
    return SUMMARY_COLUMNS, rows


def summary_text(table) -> str:
    """``"Total 4.2% | right 5.0% (upper 0.0, middle 3.1, lower 11.9) | left ..."`` from a summary table."""
    from .nodes import table_column_values

    percent = dict(zip(table_column_values(table, "region"), table_column_values(table, "percent")))
    if not percent:
        return "No lung involvement computed."
    parts = [f"Total {percent.get('total', 0.0):.1f}%"] if "total" in percent else []
    for lung in ("right", "left"):
        if lung not in percent:
            continue
        zones = [(region.split("_", 1)[1], value) for region, value in percent.items() if region.startswith(f"{lung}_")]
        detail = ", ".join(f"{zone} {value:.1f}" for zone, value in zones)
        parts.append(f"{lung} {percent[lung]:.1f}%" + (f" ({detail})" if detail else ""))
    return "Involvement: " + " | ".join(parts)


def centroid_of_row(table, row: int) -> tuple[float, float, float]:
    """RAS centroid of lesion ``row`` (0-based) of a lesion table node."""
    from covidweak.errors import InputError

    rows = table.GetTable().GetNumberOfRows()
    if not 0 <= row < rows:
        raise InputError(f"lesion row {row} does not exist: the table has {rows} rows")
    column = table.GetTable().GetColumnByName
    return tuple(float(column(f"centroid_{axis}").GetValue(row)) for axis in "ras")
