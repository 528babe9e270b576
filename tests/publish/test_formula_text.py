"""Text a partner typed never becomes a formula in a workbook we write (`=cmd|' /C calc'!A0`)."""

from __future__ import annotations

from datetime import date, datetime

import openpyxl
import polars as pl

from synchro_dagster.publish.feedback import Feedback, ReceivedFile, write_workbook
from synchro_dagster.publish.xlsx import workbook
from synchro_dagster.sources import get

DDE = "=cmd|' /C calc'!A0"


def test_a_file_named_like_a_formula_is_text_in_the_partner_feedback(tmp_path):
    fb = Feedback(get("sne"), date(2025, 2, 1))
    fb.files = [ReceivedFile(f"{DDE}.csv", datetime(2025, 3, 2), "refusé")]
    fb.refusals = [(f"{DDE}.csv", "Le fichier est vide.", "Exportez-le de nouveau.")]
    path = write_workbook(fb, tmp_path / "retour.xlsx", 11)
    book = openpyxl.load_workbook(path)
    cells = [c for ws in book for row in ws.iter_rows() for c in row if c.value is not None]
    named = [c for c in cells if str(c.value).startswith(DDE)]
    assert len(named) == 2 and {c.data_type for c in named} == {"s"}
    assert not [c for c in cells if c.data_type == "f"]


def test_a_polars_frame_with_a_formula_is_text_in_an_export(tmp_path):
    path = tmp_path / "export.xlsx"
    with workbook(path) as book:
        pl.DataFrame({"nom": [DDE, "+1+1", "@SUM(A1)"]}).write_excel(workbook=book)
    ws = openpyxl.load_workbook(path).active
    values = [(c.value, c.data_type) for (c,) in ws.iter_rows(min_row=2)]
    assert values == [(DDE, "s"), ("+1+1", "s"), ("@SUM(A1)", "s")]
