"""Reading and rewriting partner files the way people do, for the ingestion tests.

A `Sheet` is a workbook's data sheet as a list of (row number in the original
file or None for an added row, cells): every rewrite keeps track of where each
original row went, so that a test can say which staged row is which person.
"""

from __future__ import annotations

import csv
import io
import unicodedata
import zipfile
from datetime import date, datetime
from pathlib import Path
from xml.sax.saxutils import escape

import openpyxl
import polars as pl

from synchro_dagster.ingest.stage import StagedMonth, stage_month
from synchro_dagster.sources import get

MONTH = date(2025, 2, 1)
KEY = b"ingest-tests-key-0123456789abcdef"

Sheet = list[tuple[int | None, list]]


# ----------------------------------------------------------------- places
def delivered(territory: Path, source: str, pattern: str = "*", month: date = MONTH) -> Path:
    return next((territory / "landing" / month.strftime("%Y-%m") / source).glob(pattern))


def landing_folder(root: Path, source: str, month: date = MONTH) -> Path:
    """Where a partner drops a month's files, under a fresh landing directory in `root`."""
    folder = root / "landing" / month.strftime("%Y-%m") / source
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def stage_file(path: Path, source: str, month: date = MONTH) -> StagedMonth:
    """Stages one file as its month's only delivery (`path` is landing/<YYYY-MM>/<source>/…)."""
    return stage_month(path.parents[2], get(source), month, KEY, files=[path])


# ----------------------------------------------------------------- workbooks
def read_sheet(path: Path) -> Sheet:
    """Every cell of the data sheet (the simulator's last), numbered as a spreadsheet does."""
    ws = openpyxl.load_workbook(path).worksheets[-1]
    rows = ws.iter_rows(min_row=1, min_col=1, max_col=ws.max_column, values_only=True)
    return [(i, list(row)) for i, row in enumerate(rows, start=1)]


def header_index(sheet: Sheet) -> int:
    """Position in `sheet` of the header: the first row with more than three filled cells."""
    return next(i for i, (_, r) in enumerate(sheet) if sum(c not in (None, "") for c in r) > 3)


def write_xlsx(
    path: Path,
    sheet: Sheet,
    sheets_before: dict[str, list[list]] | None = None,
    sheets_after: dict[str, list[list]] | None = None,
) -> dict[int, int]:
    """Writes `sheet` as the data sheet « Données » between other sheets; returns original row
    number -> row number in `path`."""
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    sheets = {**(sheets_before or {}), "Données": [r for _, r in sheet], **(sheets_after or {})}
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
    wb.save(path)
    return moved(sheet)


def moved(sheet: Sheet) -> dict[int, int]:
    return {original: i for i, (original, _) in enumerate(sheet, start=1) if original is not None}


def write_ods(path: Path, sheet: Sheet) -> dict[int, int]:
    """A minimal OpenDocument spreadsheet: what LibreOffice's "save as .ods" produces, reduced.

    The `mimetype` entry comes first and is stored uncompressed, as ODF requires; dates are
    date cells, numbers float cells, everything else string cells.
    """
    body = "".join(
        "<table:table-row>" + "".join(_ods_cell(v) for v in row) + "</table:table-row>"
        for _, row in sheet
    )
    ns = (
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"'
    )
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {ns} '
        'office:version="1.2"><office:body><office:spreadsheet><table:table table:name="Feuille1">'
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
        z.writestr(
            zipfile.ZipInfo("mimetype"),
            "application/vnd.oasis.opendocument.spreadsheet",
            compress_type=zipfile.ZIP_STORED,
        )
        z.writestr("META-INF/manifest.xml", manifest, compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("content.xml", content, compress_type=zipfile.ZIP_DEFLATED)
    return moved(sheet)


def _ods_cell(value: object) -> str:
    if value is None or value == "":
        return "<table:table-cell/>"
    if isinstance(value, datetime | date):
        iso = value.isoformat() if isinstance(value, datetime) else f"{value.isoformat()}T00:00:00"
        return (
            f'<table:table-cell office:value-type="date" office:date-value="{iso}">'
            f"<text:p>{iso}</text:p></table:table-cell>"
        )
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (
            f'<table:table-cell office:value-type="float" office:value="{value}">'
            f"<text:p>{value}</text:p></table:table-cell>"
        )
    return (
        f'<table:table-cell office:value-type="string"><text:p>{escape(str(value))}'
        "</text:p></table:table-cell>"
    )


# ----------------------------------------------------------------- CSV
def read_csv_rows(path: Path, encoding: str, delimiter: str = ";") -> list[list[str]]:
    text = path.read_bytes().decode(encoding)
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def write_csv_rows(path: Path, rows: list[list[str]], encoding: str, delimiter: str = ";") -> Path:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    path.write_bytes(out.getvalue().encode(encoding))
    return path


# ----------------------------------------------------------------- text
def strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def without_provenance(frame: pl.DataFrame, row_map: dict[int, int] | None = None) -> pl.DataFrame:
    """A staged or quarantined frame minus where its file lives, rows renumbered by `row_map`,
    in row order: two deliveries saying the same thing give equal frames."""
    frame = frame.drop([c for c in ("file_sha256", "file_name") if c in frame.columns])
    if row_map is not None:
        frame = frame.with_columns(
            pl.col("row_number").replace_strict(row_map, return_dtype=pl.Int64)
        )
    return frame.sort("row_number")
