"""The report as an Excel workbook: a summary sheet, one sheet per chart (its table, and a
native Excel chart whose series read that table's cells), the definitions and the method.

Figures are number cells in the `#,##0` format, which a French Excel shows as `1 234`; a
suppressed figure is the text « < 11 » or « secret », never a number (Excel draws no bar for
it). Dates are date cells shown `dd/mm/yyyy`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import xlsxwriter

from synchro_dagster.publish import french
from synchro_dagster.publish.xlsx import workbook

if TYPE_CHECKING:
    from synchro_dagster.publish.report import Cell, Change, Chart, Report

PALETTE = (
    "#1F4E79",
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#0072B2",
    "#8C6D31",
    "#999999",
    "#F0E442",
)
HEADER_ROW = 4  # 0-based row of a chart sheet's table header; its data starts below
SECRET_NOTE = (
    "« < {n} » : moins de {n} ménages derrière ce chiffre (secret primaire) ; « secret » : "
    "masqué pour qu'aucune case secrète ne puisse être recalculée (secret secondaire), ou "
    "durée mesurée sur moins de {n} ménages ; « n.d. » : non disponible. Les cases masquées ne "
    "sont pas tracées."
)


ESTIMATE_TITLE = "Estimation des ménages que personne n'a vus (hors comptage)"


def secret_note(min_cell: int) -> str:
    return french.typeset(SECRET_NOTE.format(n=min_cell))


class _Formats:
    def __init__(self, wb: xlsxwriter.Workbook) -> None:
        self.title = wb.add_format({"bold": True, "font_size": 16, "font_color": PALETTE[0]})
        self.subtitle = wb.add_format({"bold": True, "font_size": 12})
        self.header = wb.add_format(
            {"bold": True, "bg_color": "#DCE6F1", "border": 1, "text_wrap": True, "valign": "top"}
        )
        self.text = wb.add_format({"text_wrap": True, "valign": "top"})
        self.label = wb.add_format({"border": 1})
        self.part = wb.add_format({"border": 1, "indent": 1, "font_color": "#404040"})
        self.number = wb.add_format({"num_format": "#,##0", "border": 1})
        self.change = wb.add_format({"num_format": "+#,##0;-#,##0;0", "border": 1})
        self.share = wb.add_format({"num_format": "+0.0%;-0.0%;0.0%", "border": 1})
        self.secret = wb.add_format(
            {"italic": True, "font_color": "#7F7F7F", "align": "right", "border": 1}
        )
        self.date = wb.add_format({"num_format": "dd/mm/yyyy", "align": "left"})
        self.note = wb.add_format({"italic": True, "font_color": "#595959", "text_wrap": True})


def write_workbook(report: Report, path: Path) -> None:
    wb = workbook(path)
    f = _Formats(wb)
    _summary(wb, f, report)
    for chart in report.charts:
        _chart_sheet(wb, f, chart, report.min_cell)
    _definitions(wb, f, report)
    _method(wb, f, report)
    wb.close()


def _cell(ws, row: int, col: int, cell: Cell, min_cell: int, f: _Formats) -> None:
    if cell.published:
        ws.write_number(row, col, cell.value, f.number)
    else:
        ws.write_string(row, col, cell.text(min_cell), f.secret)


def _change(ws, row: int, col: int, change: Change, f: _Formats) -> None:
    if change.diff is None:
        ws.write_string(row, col, change.text, f.secret)
        ws.write_string(row, col + 1, "", f.secret)
        return
    ws.write_number(row, col, change.diff, f.change)
    if change.share is None:
        ws.write_string(row, col + 1, "", f.secret)
    else:
        ws.write_number(row, col + 1, change.share, f.share)


def _summary(wb: xlsxwriter.Workbook, f: _Formats, report: Report) -> None:
    ws = wb.add_worksheet("Synthèse")
    ws.set_column(0, 0, 58)
    ws.set_column(1, 5, 14)
    ws.write_string(0, 0, "Synchrø — observation dynamique du sans-abrisme", f.title)
    ws.write_string(1, 0, f"Rapport mensuel : {french.month_name(report.month)}", f.subtitle)
    ws.write_string(2, 0, "Édité le")
    ws.write_datetime(2, 1, report.issued, f.date)
    ws.merge_range(3, 0, 3, 5, report.headline, f.text)
    ws.set_row(3, 32)
    month = french.month_name(report.month)
    headers = ["Indicateur", month, "Sur un mois", "en %", "Sur un an", "en %"]
    for col, text in enumerate(headers):
        ws.write_string(5, col, text, f.header)
    for i, k in enumerate(report.key_figures, start=6):
        ws.write_string(i, 0, k.label, f.part if k.part else f.label)
        _cell(ws, i, 1, k.now, report.min_cell, f)
        _change(ws, i, 2, k.on_month, f)
        _change(ws, i, 4, k.on_year, f)
    end = 6 + len(report.key_figures) + 1
    ws.merge_range(end, 0, end, 5, secret_note(report.min_cell), f.note)
    ws.set_row(end, 45)
    if report.estimate:  # apart from the counts, under its own title
        end += 2
        ws.write_string(end, 0, ESTIMATE_TITLE, f.header)
        ws.merge_range(end + 1, 0, end + 1, 5, report.estimate, f.text)
        ws.set_row(end + 1, 75)
        end += 1
    ws.write_string(end + 2, 0, "Graphiques : un onglet par graphique, avec son tableau.")
    for i, chart in enumerate(report.charts, start=end + 3):
        ws.write_url(i, 0, f"internal:'{chart.sheet}'!A1", string=chart.title)


def _chart_sheet(wb: xlsxwriter.Workbook, f: _Formats, chart: Chart, min_cell: int) -> None:
    ws = wb.add_worksheet(chart.sheet)
    ws.set_column(0, 0, 44 if chart.kind == "bar" else 14)
    ws.set_column(1, len(chart.series), 16)
    ws.write_string(0, 0, chart.title, f.subtitle)
    ws.write_string(1, 0, f"Unité : {chart.unit}.")
    ws.merge_range(2, 0, 2, len(chart.series), secret_note(min_cell), f.note)
    ws.set_row(2, 60)
    ws.write_string(HEADER_ROW, 0, chart.category_title, f.header)
    for col, (name, _) in enumerate(chart.series, start=1):
        ws.write_string(HEADER_ROW, col, name, f.header)
    first, last = HEADER_ROW + 1, HEADER_ROW + len(chart.categories)
    for row, category in enumerate(chart.categories, start=first):
        ws.write_string(row, 0, category, f.label)
    for col, (_, cells) in enumerate(chart.series, start=1):
        for row, cell in enumerate(cells, start=first):
            _cell(ws, row, col, cell, min_cell, f)
    excel = wb.add_chart({"type": chart.kind, **({"subtype": "stacked"} if chart.stacked else {})})
    for col, _ in enumerate(chart.series, start=1):
        color = PALETTE[(col - 1) % len(PALETTE)]
        excel.add_series(
            {
                "name": [chart.sheet, HEADER_ROW, col],
                "categories": [chart.sheet, first, 0, last, 0],
                "values": [chart.sheet, first, col, last, col],
                "fill": {"color": color},
                "border": {"none": True},
                "gap": 60,
            }
        )
    excel.set_title({"name": chart.title, "name_font": {"size": 11}})
    values = {"num_format": "#,##0", "major_gridlines": {"visible": True}}
    if chart.kind == "bar":  # xlsxwriter: a bar chart's x axis is its horizontal value axis
        excel.set_x_axis(values)
        # categories top-down as in the table, the value axis still at the bottom
        excel.set_y_axis({"reverse": True, "crossing": "max"})
    else:
        excel.set_y_axis(values)
    excel.set_legend({"position": "bottom"} if len(chart.series) > 1 else {"none": True})
    excel.show_blanks_as("gap")
    height = max(360, 26 * len(chart.categories) * len(chart.series) + 120)
    excel.set_size({"width": 760, "height": height if chart.kind == "bar" else 420})
    ws.insert_chart(HEADER_ROW, len(chart.series) + 2, excel)


def _definitions(wb: xlsxwriter.Workbook, f: _Formats, report: Report) -> None:
    ws = wb.add_worksheet("Définitions")
    ws.set_column(0, 0, 40)
    ws.set_column(1, 1, 12)
    ws.set_column(2, 2, 100)
    ws.write_string(0, 0, "Définitions des indicateurs", f.subtitle)
    for col, text in enumerate(("Indicateur", "Unité", "Définition")):
        ws.write_string(2, col, text, f.header)
    for row, (label, unit, text) in enumerate(report.definitions, start=3):
        ws.write_string(row, 0, label, f.text)
        ws.write_string(row, 1, unit, f.text)
        ws.write_string(row, 2, text, f.text)


def _method(wb: xlsxwriter.Workbook, f: _Formats, report: Report) -> None:
    ws = wb.add_worksheet("Méthode")
    ws.set_column(0, 0, 28)
    ws.set_column(1, 1, 110)
    ws.write_string(0, 0, "Note de méthode", f.subtitle)
    for row, (heading, text) in enumerate(report.method, start=2):
        ws.write_string(row, 0, heading, f.header)
        ws.write_string(row, 1, text, f.text)
