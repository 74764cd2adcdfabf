"""A report's HTML drawn to PNG or PDF with Qt's rich-text engine (PySide6), headless.

QTextDocument lays out the report's subset of HTML (headings, tables, images)
without a browser, and with ``QT_QPA_PLATFORM=offscreen`` it needs no display.
Inside Slicer the same code runs on Slicer's own Qt. No pure-Python HTML-to-PDF
library is installed offline, so PDF goes through Qt's QPdfWriter too; without
PySide6, :func:`qt_available` is False and reports stay HTML only.
"""

from __future__ import annotations

import os
from pathlib import Path

from covidweak.errors import InputError

PAGE_WIDTH_PIXELS = 900


def qt_available() -> bool:
    try:
        import PySide6.QtGui  # noqa: F401
    except ImportError:
        return False
    return True


def _application():
    """The running Qt application, or a new headless one (offscreen unless a platform is set)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    # A widgets application, not a bare QGuiApplication: Qt allows one application per process, and
    # a later QWidget in the same process (a host GUI, the .ui tests) aborts the process without one.
    return QApplication.instance() or QApplication([])


def _document(html_path: Path):
    from PySide6.QtCore import QUrl
    from PySide6.QtGui import QTextDocument

    html_path = Path(html_path)
    if not html_path.is_file():
        raise InputError(f"{html_path}: no such report; write the report first")
    document = QTextDocument()
    # Relative <img src> resolve against the report's folder, as a browser does.
    document.setBaseUrl(QUrl.fromLocalFile(str(html_path.resolve().parent) + os.sep))
    document.setHtml(html_path.read_text(encoding="utf-8"))
    return document


def render_png(html_path: Path, png_path: Path, width: int = PAGE_WIDTH_PIXELS) -> Path:
    """Draw the report at ``html_path`` as one tall PNG ``width`` pixels wide; returns ``png_path``."""
    from PySide6.QtGui import QImage, QPainter

    app = _application()  # noqa: F841 - QTextDocument needs a living application for fonts and images
    document = _document(html_path)
    document.setTextWidth(width)
    size = document.size()
    image = QImage(int(size.width()), int(size.height()), QImage.Format_RGB32)
    image.fill(0xFFFFFF)
    painter = QPainter(image)
    document.drawContents(painter)
    painter.end()
    if not image.save(str(png_path)):
        raise InputError(f"cannot write {png_path}: check the folder is writable")
    return Path(png_path)


def render_pdf(html_path: Path, pdf_path: Path) -> Path:
    """Print the report at ``html_path`` to an A4 PDF at ``pdf_path``."""
    from PySide6.QtGui import QPageSize, QPdfWriter

    app = _application()  # noqa: F841
    document = _document(html_path)
    writer = QPdfWriter(str(pdf_path))
    writer.setPageSize(QPageSize(QPageSize.A4))
    document.print_(writer)
    return Path(pdf_path)
