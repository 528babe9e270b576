"""Tolerant reading of partner files: CSV in any usual encoding and delimiter, XLSX/XLSM/ODS.

Whatever sits above the header (title block, blank rows, merged cells) is
skipped: the header is the row whose cells best match the source's column
aliases, on the sheet that matches best. Blank rows, one-cell rows (section
titles, totals, comments) and totals lines ("Total" then counts) are not
records. Every row keeps the row number a person sees when opening the file.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import fastexcel
import polars as pl

from synchro_dagster.ingest.errors import FileRejected
from synchro_dagster.sources.spec import Source, normalise_label

HEADER_SEARCH_ROWS = 40
SPREADSHEET_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".ods"}
CSV_SUFFIXES = {".csv", ".txt"}
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # an encrypted (password-protected) Office file is an OLE box
# a totals line starts with "Total", "TOTAL :", "Sous-total", "Effectif total"... then counts
_TOTALS_LABEL = r"(?i)^\W*(?:sous[\s-]*|effectif\s+|nombre\s+)?tota(?:l|le|ls|les|ux)\b"
_NAME_FIELDS = ("last_name", "first_name", "full_name", "birth_name")


@dataclass
class RawTable:
    """A file's data rows, one String column per canonical field found, plus `row_number`."""

    file: Path
    sheet: str | None
    header_row: int  # as a person sees it (1-based)
    headers: dict[str, str]  # canonical field -> header text as the partner wrote it
    unmapped_headers: list[tuple[int, str]]  # (column, 1-based; title): in memory only
    frame: pl.DataFrame
    rows_ignored: int  # blank, title, total and comment rows below the header


def read_table(path: Path, source: Source) -> RawTable:
    suffix = path.suffix.lower()
    if path.stat().st_size == 0:
        raise FileRejected(
            path,
            "empty_file",
            "the file is empty (0 bytes)",
            "export the file again and check it opens before sending it",
        )
    if suffix in CSV_SUFFIXES:
        return _locate(path, source, None, _csv_grid(path))
    if suffix in SPREADSHEET_SUFFIXES:
        return _read_workbook(path, source)
    raise FileRejected(
        path,
        "unsupported_format",
        f"files of type '{suffix or 'none'}' are not read",
        "send the export as .xlsx, .ods or .csv",
    )


# ------------------------------------------------------------------ CSV
def decode(raw: bytes) -> str:
    """UTF-8 (with or without BOM), else Windows-1252: what French tools export."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def sniff_delimiter(text: str) -> str:
    """The delimiter that splits the first lines most consistently (';', ',' or tab)."""
    lines = [line for line in text.splitlines()[:HEADER_SEARCH_ROWS] if line.strip()]
    best, best_score = ";", -1
    for delim in (";", "\t", ","):
        counts = [line.count(delim) for line in lines]
        widest = max(counts, default=0)
        score = sum(1 for c in counts if c == widest) * widest
        if score > best_score:
            best, best_score = delim, score
    return best


def _csv_grid(path: Path) -> tuple[pl.DataFrame, list[int]]:
    raw = path.read_bytes()
    if raw.startswith(_OLE_MAGIC) or raw.startswith(b"PK\x03\x04"):
        raise FileRejected(
            path,
            "not_a_csv",
            "the file is a spreadsheet saved with a .csv name",
            "export it again as CSV, or send it with its real .xlsx extension",
        )
    text = decode(raw)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(text), strict=True)
    rows: list[list[str]] = []
    numbers: list[int] = []
    try:
        for record in reader:
            rows.append(record)
            numbers.append(reader.line_num)  # the line a record ends on, as an editor shows it
    except csv.Error as exc:
        raise FileRejected(
            path,
            "unreadable",
            f"the CSV cannot be parsed near line {reader.line_num}",
            "check for an unclosed quote and export the file again",
        ) from exc
    width = max((len(r) for r in rows), default=0)
    columns = {
        f"c{j}": [r[j] if j < len(r) and r[j].strip() else None for r in rows] for j in range(width)
    }
    return pl.DataFrame(columns, schema={c: pl.String for c in columns}), numbers


# ------------------------------------------------------------------ spreadsheets
def _read_workbook(path: Path, source: Source) -> RawTable:
    head = path.read_bytes()[:8]
    if head.startswith(_OLE_MAGIC) and path.suffix.lower() != ".xls":
        raise FileRejected(
            path,
            "password_protected",
            "the workbook is password-protected (or encrypted)",
            "remove the password (File > Info > Protect workbook) and send it again",
        )
    try:
        reader = fastexcel.read_excel(str(path))
        # each sheet is parsed once; the one whose header matches the source best is the data
        sheets = [(name, _sheet(reader, name)) for name in reader.sheet_names]
    except Exception as exc:  # calamine says why in its own words; ours must be the partner's
        raise FileRejected(
            path,
            "unreadable",
            "the workbook cannot be opened",
            "open it in Excel or LibreOffice, save it again as .xlsx and resend it",
        ) from exc
    if not sheets:
        raise FileRejected(
            path, "no_data_rows", "the workbook has no sheet", "send the filled workbook"
        )
    sheet, frame = max(sheets, key=lambda s: _best_header(s[1], source)[1])
    return _locate(path, source, sheet, (frame, list(range(1, frame.height + 1))))


def _sheet(reader: fastexcel.ExcelReader, sheet: str) -> pl.DataFrame:
    # skip_rows=0 keeps leading blank rows, so that row index + 1 is the spreadsheet row
    return reader.load_sheet(sheet, header_row=None, skip_rows=0, dtypes="string").to_polars()


# ------------------------------------------------------------------ header and rows
def _best_header(grid: pl.DataFrame, source: Source) -> tuple[int, int]:
    index = source.header_index()
    best_row, best_score = 0, 0
    for i, row in enumerate(grid.head(HEADER_SEARCH_ROWS).rows()):
        fields = {index.get(normalise_label(c)) for c in row if c}
        score = len(fields - {None})
        if score > best_score:
            best_row, best_score = i, score
    return best_row, best_score


def _totals_line(columns: list[str], positions: dict[str, str]) -> pl.Expr:
    """The row's first filled cell says "Total" (a name column saying so is a person's name)."""
    names = {positions[f] for f in _NAME_FIELDS if f in positions}
    first_filled = pl.coalesce(
        pl.when(pl.col(c).str.strip_chars().str.len_chars() > 0).then(
            pl.lit("") if c in names else pl.col(c)
        )
        for c in columns
    )
    return first_filled.str.contains(_TOTALS_LABEL).fill_null(False)


def _locate(
    path: Path, source: Source, sheet: str | None, grid_numbers: tuple[pl.DataFrame, list[int]]
) -> RawTable:
    grid, numbers = grid_numbers
    header_at, score = _best_header(grid, source)
    if score < 2:
        expected = ", ".join(f"« {aliases[0]} »" for aliases in list(source.columns.values())[:6])
        raise FileRejected(
            path,
            "no_header",
            "no header row with the expected column names was found",
            f"keep the column titles of the usual export (such as {expected})",
        )
    index = source.header_index()
    header = grid.row(header_at)
    positions: dict[str, str] = {}  # canonical field -> grid column
    unmapped: list[tuple[int, str]] = []
    for place, (column, cell) in enumerate(zip(grid.columns, header, strict=True), start=1):
        if not cell:
            continue
        name = index.get(normalise_label(cell))
        if name is None or name in positions:
            unmapped.append((place, cell.strip()))
        else:
            positions[name] = column
    for alternatives in source.required:
        options = alternatives.split("|")
        if not any(o in positions for o in options):
            aliases = source.columns[options[0]]
            raise FileRejected(
                path,
                "missing_column",
                f"the required column « {aliases[0]} » is missing",
                f"add the column back with its usual title (accepted titles: {', '.join(aliases)})",
                column=aliases[0],
            )
    body = grid.slice(header_at + 1).with_columns(
        pl.Series("row_number", numbers[header_at + 1 :], dtype=pl.Int64)
    )
    filled = pl.sum_horizontal(
        [pl.col(c).str.strip_chars().str.len_chars().fill_null(0) > 0 for c in grid.columns]
    )
    # blank rows and one-cell rows (titles, totals, comments) are not records, nor totals lines
    kept = body.filter((filled > 1) & ~_totals_line(grid.columns, positions))
    if kept.height == 0:
        raise FileRejected(
            path,
            "no_data_rows",
            "the file has a header but no data rows",
            "check that the right month was exported and that the sheet is filled",
        )
    frame = kept.select(
        *[
            pl.col(column).str.strip_chars().replace("", None).alias(name)
            for name, column in positions.items()
        ],
        "row_number",
    )
    names = dict(zip(grid.columns, header, strict=True))
    return RawTable(
        path,
        sheet,
        numbers[header_at],
        {name: str(names[column]).strip() for name, column in positions.items()},
        unmapped,
        frame,
        body.height - kept.height,
    )
