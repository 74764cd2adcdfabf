"""Per-case HTML report and the batch index page: plain HTML, no external files but the case's PNGs.

A report is built from what each batch step produced (tables, pictures, models),
so a step added later (severity, diagnosis, similar cases) shows up without a
change here. The index page's table sorts on a header click with a few lines
of inline JavaScript (no CDN: reports are opened on hospital machines offline).
"""

from __future__ import annotations

import html
import numbers
from dataclasses import dataclass, field
from typing import Sequence

CLINICAL_NOTE = ("Research use only. Not for clinical use: these results were produced by research software "
                 "from weak labels and must not be used for diagnosis or treatment decisions.")
STYLE = """
body { font-family: sans-serif; margin: 16px; color: #222; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 18px; }
table { border-collapse: collapse; margin: 6px 0; }
th, td { border: 1px solid #999; padding: 2px 6px; font-size: 12px; }
th { background: #e4e8ee; } td.num { text-align: right; }
.note { background: #fff3cd; border: 1px solid #d39e00; padding: 6px; font-weight: bold; }
.failed { color: #a00000; }
"""


@dataclass
class Table:
    """A titled table; numbers are right-aligned and shown with ``digits`` decimals."""

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence]
    digits: int = 2


@dataclass
class Picture:
    """A PNG next to the report (``file`` relative to the report's folder) with its caption."""

    title: str
    file: str
    caption: str = ""


@dataclass
class Section:
    """What one batch step contributes to a case report."""

    title: str
    pictures: list = field(default_factory=list)
    tables: list = field(default_factory=list)
    text: str = ""


def cell(value, digits: int = 2) -> str:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        text = f"{value:.{digits}f}" if isinstance(value, float) else str(value)
        return f'<td class="num">{text}</td>'
    return f"<td>{html.escape('' if value is None else str(value))}</td>"


def table_html(table: Table, table_id: str = "") -> str:
    ident = f' id="{html.escape(table_id)}"' if table_id else ""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(cell(v, table.digits) for v in row) + "</tr>\n" for row in table.rows)
    title = f"<h3>{html.escape(table.title)}</h3>\n" if table.title else ""
    return f"{title}<table{ident}><tr>{head}</tr>\n{body}</table>\n"


def models_table(models: Sequence[dict]) -> Table:
    """The models that produced the report, one row each (step, method, name, sha256)."""
    rows = [[m.get("step", ""), m.get("method", ""), m.get("name", ""), m.get("sha256", "")] for m in models]
    return Table("", ("step", "method", "weights", "sha256"), rows)


def case_report(case_id: str, facts: Sequence[tuple[str, str]], sections: Sequence[Section],
                models: Sequence[dict]) -> str:
    """The HTML text of one case's report: header facts, each step's section, the models, the note."""
    parts = [f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(case_id)}</title>"
             f"<style>{STYLE}</style></head><body>",
             f"<h1>COVID-19 lesion analysis: {html.escape(case_id)}</h1>",
             f'<p class="note">{html.escape(CLINICAL_NOTE)}</p>',
             "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                                 for k, v in facts) + "</table>"]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        if section.text:
            parts.append(f"<p>{html.escape(section.text)}</p>")
        for picture in section.pictures:
            parts.append(f"<h3>{html.escape(picture.title)}</h3><p><img src=\"{html.escape(picture.file)}\" "
                         f"alt=\"{html.escape(picture.title)}\"><br>{html.escape(picture.caption)}</p>")
        parts.extend(table_html(table) for table in section.tables)
    parts.append("<h2>Models used</h2>" + table_html(models_table(models)))
    parts.append(f'<p class="note">{html.escape(CLINICAL_NOTE)}</p></body></html>\n')
    return "\n".join(parts)


SORT_SCRIPT = """
function sortBy(th) {
  var table = th.closest('table'), col = th.cellIndex, rows = Array.from(table.rows).slice(1);
  var up = th.dataset.order !== 'asc'; th.dataset.order = up ? 'asc' : 'desc';
  function key(row) {
    var t = row.cells[col].innerText.trim(), n = Number(t);
    return t === '' || isNaN(n) ? t.toLowerCase() : n;
  }
  rows.sort(function (a, b) {
    var x = key(a), y = key(b);
    if (typeof x !== typeof y) { x = String(x); y = String(y); }
    return (x < y ? -1 : x > y ? 1 : 0) * (up ? 1 : -1);
  });
  rows.forEach(function (row) { table.tBodies[0].appendChild(row); });
}
"""


def index_page(columns: Sequence[str], rows: Sequence[dict], report_column: str = "report") -> str:
    """The batch index: one row per case with its figures, status and a link to its report.

    ``rows``: summary rows (dicts over ``columns``); the ``report_column`` value
    (a path relative to the index) becomes the link. Clicking a header sorts by it.
    """
    shown = [c for c in columns if c != report_column]
    head = "".join(f'<th onclick="sortBy(this)">{html.escape(c)}</th>' for c in shown)
    body = []
    for row in rows:
        cells = []
        for column in shown:
            value = row.get(column, "")
            if column == "case_id" and row.get(report_column):
                cells.append(f'<td><a href="{html.escape(row[report_column])}">{html.escape(str(value))}</a></td>')
            else:
                cells.append(cell(value))
        css = ' class="failed"' if row.get("status") == "failed" else ""
        body.append(f"<tr{css}>{''.join(cells)}</tr>")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Batch index</title><style>{STYLE}"
            f"th {{ cursor: pointer; }}</style><script>{SORT_SCRIPT}</script></head><body>\n"
            f"<h1>COVID-19 lesion analysis: batch of {len(rows)} cases</h1>\n"
            f'<p class="note">{html.escape(CLINICAL_NOTE)}</p>\n<p>Click a column header to sort.</p>\n'
            f"<table><thead><tr>{head}</tr></thead><tbody>\n" + "\n".join(body) + "\n</tbody></table></body></html>\n")
