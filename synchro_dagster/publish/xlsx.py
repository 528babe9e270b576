"""Workbooks we write may carry text a partner typed (a file name, a column title, a name in a
rights export): a cell starting with « = » must stay text, never become a formula that a
spreadsheet runs (`=cmd|' /C calc'!A0`). Every workbook is written through here."""

from __future__ import annotations

from pathlib import Path

import xlsxwriter
from openpyxl import Workbook

# xlsxwriter turns "=..." into a formula and "http..." into a link unless told not to
OPTIONS = {"strings_to_formulas": False, "strings_to_urls": False}


def workbook(path: Path) -> xlsxwriter.Workbook:
    """An xlsxwriter workbook that writes every string as text."""
    return xlsxwriter.Workbook(str(path), OPTIONS)


def as_text(book: Workbook) -> Workbook:
    """An openpyxl workbook whose every cell typed as a formula is text again (openpyxl takes
    any string starting with « = » for a formula)."""
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if cell.data_type == "f":
                    cell.data_type = "s"
    return book
