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
import re
import zipfile
from collections import Counter
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
DELIMITERS = (";", "\t", ",", "|")
# calamine allocates a sheet's whole rectangle, A1 to its farthest cell, at 32 bytes a cell: in
# an xlsx, a stray cell at XFD1048576 asks for 512 GiB and aborts the process. 20 million cells
# (about 640 MiB) is 100,000 rows of 200 columns, far more than any partner's monthly export.
# An .ods is refused by calamine itself past 100 million cells; an .xls cannot pass 65,536 rows
# of 256 columns.
MAX_SHEET_CELLS = 20_000_000
DATA_SHEET_MIN_ROWS = 5  # a sheet with fewer rows under a matching header is a template
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
        grid, numbers, cut = _csv_grid(path)
        table = _locate(path, source, None, (grid, numbers))
        if cut:  # judged once the file is known to be a CSV export: garbage has no header
            raise cut
        return table
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
    """UTF-16 (with a BOM, or its zero bytes), UTF-8 (with or without BOM), else
    Windows-1252: what French tools export. A file marked as Unicode that is not raises
    UnicodeDecodeError."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    head = raw[:400]
    if len(head) >= 4 and head[1::2].count(0) > 0.4 * len(head[1::2]) and not head[::2].count(0):
        return raw.decode("utf-16-le")
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def _head(text: str) -> str:
    """The text up to its HEADER_SEARCH_ROWS-th line feed: all of its first lines, whatever
    else splits lines, without splitting a whole large export."""
    end = -1
    for _ in range(HEADER_SEARCH_ROWS):
        end = text.find("\n", end + 1)
        if end < 0:
            return text
    return text[:end]


def sniff_delimiter(text: str) -> str:
    """The delimiter that splits the first lines most consistently (';', tab, ',' or '|')."""
    lines = [line for line in _head(text).splitlines()[:HEADER_SEARCH_ROWS] if line.strip()]
    best, best_score = ";", -1
    for delim in DELIMITERS:
        counts = [line.count(delim) for line in lines]
        widest = max(counts, default=0)
        score = sum(1 for c in counts if c == widest) * widest
        if score > best_score:
            best, best_score = delim, score
    return best


def _csv_grid(path: Path) -> tuple[pl.DataFrame, list[int], FileRejected | None]:
    raw = path.read_bytes()
    if raw.startswith(_OLE_MAGIC) or raw.startswith(b"PK\x03\x04"):
        raise FileRejected(
            path,
            "not_a_csv",
            "the file is a spreadsheet saved with a .csv name",
            "export it again as CSV, or send it with its real .xlsx extension",
        )
    try:
        text = decode(raw)
    except UnicodeDecodeError as exc:
        raise FileRejected(
            path,
            "unreadable",
            f"the file is marked as Unicode text but byte {exc.start} on is not text (a damaged "
            "or badly joined copy)",
            "export the file again and send it without adding anything to it",
        ) from None
    delimiter = sniff_delimiter(text)
    grid, numbers, widths = _plain_grid(text, delimiter) or _quoted_grid(path, text, delimiter)
    return grid, numbers, _cut_line(path, text, widths, numbers)


# what only the csv module reads right: quotes (a quoted field may hold a delimiter or a line
# break), a NUL, the separators Python strips as spaces and Polars not; and a lone carriage return
_NOT_PLAIN = '"\x00\x1c\x1d\x1e\x1f'


def _needs_csv_module(text: str) -> bool:
    """`str.count` and `in` are C scans: a regex over a large export would cost more than
    splitting it."""
    return any(c in text for c in _NOT_PLAIN) or text.count("\r") != text.count("\r\n")


def _plain_grid(text: str, delimiter: str) -> tuple[pl.DataFrame, list[int], list[int]] | None:
    """The cells of a CSV without quotes (one record a line, split as the csv module splits
    it, in a fraction of its time), each record's line and number of fields; None when the
    file needs the csv module."""
    if not text or _needs_csv_module(text):
        return None
    lines = pl.DataFrame({"line": [text.removesuffix("\n")]}, schema={"line": pl.String}).select(
        pl.col("line").str.split("\n").explode().str.strip_suffix("\r")
    )
    if lines["line"].str.len_chars().max() > csv.field_size_limit():
        return None  # the csv module says which line is too long
    line = pl.col("line")
    # an empty line is a record without fields
    widths = lines.select(
        pl.when(line != "").then(line.str.count_matches(delimiter, literal=True) + 1).fill_null(0)
    ).to_series()
    width = int(widths.max())
    if width == 0:
        return pl.DataFrame(), list(range(1, lines.height + 1)), widths.to_list()
    cells = lines.select(
        line.str.split_exact(delimiter, width - 1)
        .struct.rename_fields([f"c{j}" for j in range(width)])
        .struct.unnest()
    )
    grid = cells.select(pl.when(pl.all().str.strip_chars() != "").then(pl.all()).name.keep())
    return grid, list(range(1, lines.height + 1)), widths.to_list()


def _quoted_grid(
    path: Path, text: str, delimiter: str
) -> tuple[pl.DataFrame, list[int], list[int]]:
    """The cells of any CSV, read by the csv module, each record's line (the line it ends on,
    as an editor shows it: a quoted field can hold line breaks) and number of fields."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[list[str]] = []
    numbers: list[int] = []
    try:
        for record in reader:
            rows.append(record)
            numbers.append(reader.line_num)
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise FileRejected(
                path,
                "cell_too_large",
                f"a cell near line {reader.line_num} holds more than "
                f"{csv.field_size_limit():,} characters",
                "check that line (a misplaced quote can merge many lines into one cell) and "
                "export the file again",
            ) from None
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
    grid = pl.DataFrame(columns, schema={c: pl.String for c in columns})
    return grid, numbers, [len(r) for r in rows]


def _cut_line(path: Path, text: str, widths: list[int], numbers: list[int]) -> FileRejected | None:
    """A file that ends without a line break, on a record shorter than the others, was cut."""
    if not widths or text.endswith(("\n", "\r")):
        return None
    usual = Counter(w for w in widths if w > 1).most_common(1)
    if usual and widths[-1] < usual[0][0]:
        return FileRejected(
            path,
            "truncated",
            f"the file ends in the middle of line {numbers[-1]} (its last line has "
            f"{widths[-1]} of the {usual[0][0]} fields of the others): it was cut while "
            "being copied or exported",
            "export the whole file again and check its last line before sending it",
        )
    return None


# ------------------------------------------------------------------ spreadsheets
_SHEET_TAG = re.compile(rb"<(?:\w+:)?sheet\b[^>]*>")
_RELATION_TAG = re.compile(rb"<Relationship\b[^>]*>")
# a cell's reference, column and row apart: a sheet has hundreds of thousands of cells but
# few distinct columns and rows, so each is counted once
_CELL_COLUMN = re.compile(rb"<c\b[^>]*?\sr=\"([A-Z]{1,3})\d{1,7}\"")
_CELL_ROW = re.compile(rb"<c\b[^>]*?\sr=\"[A-Z]{1,3}(\d{1,7})\"")
# a formula element not followed by a non-empty value (`<v/>` is what a program leaves)
_FORMULA_WITHOUT_VALUE = re.compile(rb"<f\b[^>]*?(?:/>|>[^<]*</f>)(?!\s*<v(?:\s[^>]*)?>[^<])")
_CHUNK = 1 << 22


def _attribute(tag: bytes, name: bytes) -> str:
    found = re.search(rb"\s" + name + rb'="([^"]*)"', tag)
    return found.group(1).decode("utf-8", "replace") if found else ""


def _worksheets(book: zipfile.ZipFile) -> dict[str, str]:
    """Worksheet member of the archive -> sheet name, as the workbook lists them."""
    try:
        listed = book.read("xl/workbook.xml")
        relations = book.read("xl/_rels/workbook.xml.rels")
    except KeyError:
        return {}
    targets = {
        _attribute(t, b"Id"): _attribute(t, b"Target").lstrip("/").removeprefix("xl/")
        for t in _RELATION_TAG.findall(relations)
    }
    return {
        f"xl/{targets[rid]}": _attribute(t, b"name")
        for t in _SHEET_TAG.findall(listed)
        if (rid := _attribute(t, b"r:id")) in targets
    }


def _column_number(letters: bytes) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + letter - 64
    return number


def _extent(book: zipfile.ZipFile, member: str) -> tuple[int, int, bool]:
    """(last row, last column, a formula without a computed value) of a worksheet, read as a
    stream: the XML of a large sheet is never held whole."""
    last_row = last_column = 0
    unvalued = False
    tail = b""
    with book.open(member) as xml:
        while chunk := xml.read(_CHUNK):
            buffer, tail = tail + chunk, (tail + chunk)[-4096:]
            last_row = max(last_row, *map(int, set(_CELL_ROW.findall(buffer))), 0)
            columns = set(_CELL_COLUMN.findall(buffer))
            last_column = max(last_column, *map(_column_number, columns), 0)
            # a match at the very end may have its <v> in the next chunk: judged there
            unvalued = unvalued or any(
                m.end() < len(buffer) - 64 or len(chunk) < _CHUNK
                for m in _FORMULA_WITHOUT_VALUE.finditer(buffer)
            )
    return last_row, last_column, unvalued


def _guard_xlsx(path: Path) -> None:
    """What would crash or silently blank the Excel engine, refused before it opens the file:
    a sheet stretched far beyond its data, formulas saved without their results."""
    try:
        book = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        return  # not an archive: the engine says it is unreadable
    with book:
        for member, sheet in _worksheets(book).items():
            if member not in book.namelist():
                continue
            rows, columns, unvalued = _extent(book, member)
            if rows * columns > MAX_SHEET_CELLS:
                raise FileRejected(
                    path,
                    "sheet_too_large",
                    f"the sheet « {sheet} » stretches over {rows:,} rows and {columns:,} columns "
                    f"({rows * columns:,} cells, more than the {MAX_SHEET_CELLS:,} read): a stray "
                    "cell far beyond the data",
                    "delete the rows and columns after the data (Ctrl+End shows the last cell), "
                    "save and send the workbook again",
                )
            if unvalued:
                raise FileRejected(
                    path,
                    "formulas_without_values",
                    f"the sheet « {sheet} » holds formulas whose results were never computed "
                    "(the file was written by a program and never opened in a spreadsheet)",
                    "open the workbook in Excel or LibreOffice, save it and send it again (or "
                    "export values instead of formulas)",
                )


def _read_workbook(path: Path, source: Source) -> RawTable:
    head = path.read_bytes()[:8]
    if head.startswith(_OLE_MAGIC) and path.suffix.lower() != ".xls":
        raise FileRejected(
            path,
            "password_protected",
            "the workbook is password-protected (or encrypted)",
            "remove the password (File > Info > Protect workbook) and send it again",
        )
    if path.suffix.lower() in {".xlsx", ".xlsm"}:
        _guard_xlsx(path)
    try:
        reader = fastexcel.read_excel(str(path))
        # each sheet is parsed once; the one whose header matches the source best is the data
        sheets = [(name, _sheet(reader, name)) for name in reader.sheet_names]
    except Exception as exc:  # calamine says why in its own words; ours must be the partner's
        if "Cell limit exceeded" in str(exc):  # calamine's own guard, on OpenDocument sheets
            raise FileRejected(
                path,
                "sheet_too_large",
                "a sheet stretches over more cells than are read (a stray cell far beyond the "
                "data)",
                "delete the rows and columns after the data, save and send the workbook again",
            ) from None
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
    sheet, frame = _data_sheet(path, source, sheets)
    return _locate(path, source, sheet, (frame, list(range(1, frame.height + 1))))


def _data_sheet(
    path: Path, source: Source, sheets: list[tuple[str, pl.DataFrame]]
) -> tuple[str, pl.DataFrame]:
    """The sheet whose header matches best; of equals, the one with the most rows under it (a
    template sheet comes before the data); rows on two such sheets are refused, not halved."""
    judged = []
    for name, frame in sheets:
        row, score = _best_header(frame, source)
        judged.append((score, _filled_rows(frame.slice(row + 1)), name, frame))
    best = max(score for score, *_ in judged)
    equals = [j for j in judged if j[0] == best]
    filled = [name for _, rows, name, _ in equals if rows >= DATA_SHEET_MIN_ROWS]
    if best >= 2 and len(filled) > 1:
        raise FileRejected(
            path,
            "several_data_sheets",
            f"the rows are split over {len(filled)} sheets: "
            + ", ".join(f"« {n} »" for n in filled),
            "put all the month's rows on one sheet and send the workbook again",
        )
    _, _, name, frame = max(equals, key=lambda j: j[1])
    return name, frame


def _filled_rows(grid: pl.DataFrame) -> int:
    """Rows with more than one filled cell: records, not titles or totals."""
    return grid.filter(_cells_filled(grid.columns) > 1).height if grid.width else 0


def _cells_filled(columns: list[str]) -> pl.Expr:
    return pl.sum_horizontal(
        [pl.col(c).str.strip_chars().str.len_chars().fill_null(0) > 0 for c in columns]
    )


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
    filled = _cells_filled(grid.columns)
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
