"""A small simulated territory shared by the ingestion tests, and file-rewriting helpers."""

from __future__ import annotations

import zipfile
from datetime import date, datetime
from pathlib import Path
from xml.sax.saxutils import escape

import openpyxl
import pytest

from synchro_dagster.synthetic import generate

MONTH = date(2025, 2, 1)
KEY = b"ingest-tests-key-0123456789abcdef"


@pytest.fixture(scope="session")
def territory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("territory")
    generate(out, date(2025, 1, 1), 2, households=250, seed=11)
    return out


def delivered(territory: Path, source: str, pattern: str = "*") -> Path:
    return next((territory / "landing" / MONTH.strftime("%Y-%m") / source).glob(pattern))


def sheet_rows(path: Path) -> list[list]:
    """All cells of the workbook's data sheet (the last one), as a person sees them."""
    wb = openpyxl.load_workbook(path)
    return [list(row) for row in wb.worksheets[-1].iter_rows(values_only=True)]


def write_xlsx(
    path: Path, rows: list[list], sheets_before: dict[str, list[list]] | None = None
) -> Path:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, extra in (sheets_before or {}).items():
        ws = wb.create_sheet(name)
        for row in extra:
            ws.append(row)
    ws = wb.create_sheet("Données")
    for row in rows:
        ws.append(row)
    wb.save(path)
    return path


def write_ods(path: Path, rows: list[list]) -> Path:
    """A minimal OpenDocument spreadsheet: what LibreOffice's "save as .ods" produces, reduced."""

    def cell(value) -> str:
        if value is None or value == "":
            return "<table:table-cell/>"
        if isinstance(value, datetime | date):
            iso = (
                value.strftime("%Y-%m-%dT%H:%M:%S")
                if isinstance(value, datetime)
                else value.isoformat()
            )
            return (
                f'<table:table-cell office:value-type="date" office:date-value="{iso}">'
                f"<text:p>{iso}</text:p></table:table-cell>"
            )
        if isinstance(value, int | float):
            return (
                f'<table:table-cell office:value-type="float" office:value="{value}">'
                f"<text:p>{value}</text:p></table:table-cell>"
            )
        return (
            f'<table:table-cell office:value-type="string"><text:p>{escape(str(value))}'
            "</text:p></table:table-cell>"
        )

    body = "".join(
        "<table:table-row>" + "".join(cell(v) for v in row) + "</table:table-row>" for row in rows
    )
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        '<office:body><office:spreadsheet><table:table table:name="Feuille1">'
        f"{body}</table:table></office:spreadsheet></office:body></office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" '
        'manifest:version="1.2">'
        '<manifest:file-entry manifest:full-path="/" manifest:media-type='
        '"application/vnd.oasis.opendocument.spreadsheet"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet")
        z.writestr("META-INF/manifest.xml", manifest, compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("content.xml", content, compress_type=zipfile.ZIP_DEFLATED)
    return path
