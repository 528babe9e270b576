"""The monthly steering report as a person sees it: the workbook opened, its charts reading the
protected figures from its own cells, the HTML printed by a real headless Chromium, French
conventions."""

from __future__ import annotations

import re
import zipfile
from datetime import date
from pathlib import Path
from xml.etree import ElementTree

import openpyxl
import polars as pl
import pypdfium2
import pytest
from openpyxl.utils import column_index_from_string

from synchro_dagster.publish import french
from synchro_dagster.publish.labels import indicator_label, modality_label
from synchro_dagster.publish.report import (
    WRITTEN_FROM,
    estimate_text,
    find_chromium,
    print_pdf,
    write_reports,
)
from synchro_dagster.settings import Settings

MONTHS = ("2025-01", "2025-02", "2025-03")
CHART_SHEETS = (
    "Situations",
    "Entrées et sorties",
    "Flux par type",
    "Délai d'accès au logement",
    "Demandes et réponses",
    "115 et prioritaires",
    "Couverture par source",
)
C = "{http://schemas.openxmlformats.org/drawingml/2006/chart}"
REF = re.compile(
    r"^'?(?P<sheet>.+?)'?!\$(?P<c1>[A-Z]+)\$(?P<r1>\d+)(?::\$(?P<c2>[A-Z]+)\$(?P<r2>\d+))?$"
)


@pytest.fixture(scope="module")
def public(ran: Path) -> pl.DataFrame:
    return pl.read_parquet(Settings(ran).public_dir / "indicators.parquet")


def reports(ran: Path) -> Path:
    return Settings(ran).reports_dir


def published(public: pl.DataFrame, month: str, indicator: str, dim=None, mod=None) -> object:
    """What the report must show for a figure: its value, or the text of its secret."""
    rows = public.filter(
        (pl.col("mois") == month)
        & (pl.col("indicateur") == indicator)
        & (pl.col("dimension").is_null() if dim is None else pl.col("dimension") == dim)
        & (pl.col("modalite").is_null() if mod is None else pl.col("modalite") == mod)
    )
    if rows.is_empty():
        return 0
    (row,) = rows.iter_rows(named=True)
    if row["statut"] == "publie":
        return row["valeur"]
    return "< 11" if row["statut"] == "secret_primaire" and "months" not in indicator else "secret"


def charts(path: Path) -> list[dict]:
    """Every chart of the workbook: its type and, per series, the cells its name, categories
    and values read (parsed from the chart XML: openpyxl does not load charts)."""
    found = []
    with zipfile.ZipFile(path) as z:
        for name in sorted(n for n in z.namelist() if n.startswith("xl/charts/chart")):
            root = ElementTree.fromstring(z.read(name))
            plot = root.find(f"{C}chart/{C}plotArea")
            (chart,) = [e for e in plot if e.tag.endswith("Chart")]
            series = [
                {part: ser.find(f"{C}{part}//{C}f").text for part in ("tx", "cat", "val")}
                for ser in chart.findall(f"{C}ser")
            ]
            direction = chart.find(f"{C}barDir").get("val")
            axes = {
                axis.tag.removeprefix(C): axis.find(f"{C}scaling/{C}orientation").get("val")
                for axis in plot
                if axis.tag in (f"{C}catAx", f"{C}valAx")
            }
            found.append(
                {
                    "type": f"{chart.tag.removeprefix(C)}/{direction}",
                    "series": series,
                    "axes": axes,
                    "number_format": plot.find(f"{C}valAx/{C}numFmt").get("formatCode"),
                }
            )
    return found


def cells(wb: openpyxl.Workbook, ref: str) -> tuple[str, list[object]]:
    m = REF.match(ref)
    assert m, ref
    sheet = m["sheet"].replace("''", "'")
    col1, row1 = column_index_from_string(m["c1"]), int(m["r1"])
    col2, row2 = column_index_from_string(m["c2"] or m["c1"]), int(m["r2"] or m["r1"])
    assert col1 == col2, f"{ref}: a series reads one column"
    return sheet, [wb[sheet].cell(r, col1).value for r in range(row1, row2 + 1)]


def test_a_report_per_month_in_three_formats(ran: Path) -> None:
    names = sorted(p.name for p in reports(ran).iterdir())
    assert names == sorted(
        [*(f"synchro_{m}.{ext}" for m in MONTHS for ext in ("html", "pdf", "xlsx")), WRITTEN_FROM]
    )


def test_workbook_sheets_and_summary_show_protected_figures(ran: Path, public) -> None:
    wb = openpyxl.load_workbook(reports(ran) / "synchro_2025-03.xlsx")
    assert wb.sheetnames == ["Synthèse", *CHART_SHEETS, "Définitions", "Méthode"]
    ws = wb["Synthèse"]
    assert ws["A2"].value == "Rapport mensuel : mars 2025"
    assert ws["B3"].number_format == "dd/mm/yyyy" and ws["B3"].value.date() <= date.today()
    assert [c.value for c in ws[6]][:2] == ["Indicateur", "mars 2025"]
    rows = {r[0].value: r for r in ws.iter_rows(min_row=7) if r[0].value}
    for indicator in (
        "stock_households",
        "stock_persons",
        "inflow_households",
        "outflow_households",
    ):
        label = indicator_label(indicator)
        now, before = (published(public, m, indicator) for m in ("2025-03", "2025-02"))
        row = rows[label]
        assert row[1].value == now, label
        if isinstance(now, int):
            assert row[1].number_format == "#,##0"
        # a change only between two published figures; never a figure for a secret
        change = now - before if isinstance(now, int) and isinstance(before, int) else "secret"
        assert row[2].value == change, label
        assert row[4].value == "n.d.", "no March 2024 in the run"
    kinds = {
        f"— {modality_label('type', code)[0].lower()}{modality_label('type', code)[1:]}": code
        for code in public.filter(pl.col("modalite").str.starts_with("to_housing:"))["modalite"]
    }
    assert kinds.keys() & rows.keys(), "exits to housing by kind"
    for label in kinds.keys() & rows.keys():
        expected = published(public, "2025-03", "outflow_households", "type", kinds[label])
        assert rows[label][1].value == expected, label
    shown = [r[1].value for r in rows.values() if isinstance(r[1].value, str)]
    assert set(shown) <= {"< 11", "secret", "n.d."} and shown, "the small run has secrets"


def test_the_change_on_a_year_compares_the_same_month_a_year_before(
    ran: Path, public, tmp_path: Path
) -> None:
    # the three months again a year later, every published count one third larger
    later = public.with_columns(
        pl.col("mois").str.replace("^2025", "2026"),
        pl.when(pl.col("statut") == "publie")
        .then(pl.col("valeur") + pl.col("valeur") // 3)
        .otherwise(pl.col("valeur"))
        .alias("valeur"),
    )
    both = pl.concat([public, later])
    write_reports(both, tmp_path, Settings(ran), date.today(), [date(2026, 3, 1)])
    ws = openpyxl.load_workbook(tmp_path / "synchro_2026-03.xlsx")["Synthèse"]
    assert [c.value for c in ws[6]][:2] == ["Indicateur", "mars 2026"]
    rows = {r[0].value: r for r in ws.iter_rows(min_row=7) if r[0].value}
    shown = {}
    for indicator in ("stock_households", "stock_persons", "inflow_households"):
        now, year_before = (published(both, m, indicator) for m in ("2026-03", "2025-03"))
        numbers = isinstance(now, int) and isinstance(year_before, int)
        shown[indicator] = rows[indicator_label(indicator)][4].value
        assert shown[indicator] == (now - year_before if numbers else "secret"), indicator
    stock = published(public, "2025-03", "stock_households")
    assert shown["stock_households"] == stock // 3 > 0  # the figure a year on, not a month on


def test_every_chart_reads_the_table_on_its_own_sheet(ran: Path) -> None:
    path = reports(ran) / "synchro_2025-03.xlsx"
    wb = openpyxl.load_workbook(path)
    found = charts(path)
    # columns over months, bars over categories with long labels
    assert [c["type"] for c in found] == [
        f"barChart/{d}" for d in ("col", "col", "bar", "col", "bar", "col", "bar")
    ]
    # bars grow from the left and list their categories top-down, as the table does; values
    # read 1 234 in a French Excel
    for chart in found:
        bar = chart["type"].endswith("/bar")
        assert chart["axes"] == {"catAx": "maxMin" if bar else "minMax", "valAx": "minMax"}
        assert chart["number_format"] == "#,##0"
    sheets = []
    for chart in found:
        for series in chart["series"]:
            sheet, (name,) = cells(wb, series["tx"])
            assert cells(wb, series["cat"])[0] == sheet == cells(wb, series["val"])[0]
            _, categories = cells(wb, series["cat"])
            _, values = cells(wb, series["val"])
            assert name and all(categories) and len(categories) == len(values)
            for value in values:  # a figure, or its secret as text: never empty, never a float
                assert isinstance(value, int) or value in ("< 11", "secret", "n.d."), value
        sheets.append(sheet)
    assert sheets == list(CHART_SHEETS)


def test_chart_series_hold_the_public_figures(ran: Path, public) -> None:
    path = reports(ran) / "synchro_2025-03.xlsx"
    wb = openpyxl.load_workbook(path)
    by_sheet = {cells(wb, c["series"][0]["val"])[0]: c for c in charts(path)}
    situations = public.filter(pl.col("dimension") == "situation")["modalite"].unique()
    labels = {modality_label("situation", s): s for s in situations}
    months = {french.month_short(date(2025, m, 1)): f"2025-0{m}" for m in (1, 2, 3)}
    secrets = 0
    for series in by_sheet["Situations"]["series"]:
        _, (name,) = cells(wb, series["tx"])
        _, categories = cells(wb, series["cat"])
        _, values = cells(wb, series["val"])
        for month, value in zip(categories, values, strict=True):
            expected = published(
                public, months[month], "stock_households", "situation", labels[name]
            )
            assert value == expected, (name, month)
            secrets += isinstance(value, str)
    assert secrets, "the small run hides some situations"
    assert set(labels) == {cells(wb, s["tx"])[1][0] for s in by_sheet["Situations"]["series"]}
    series = by_sheet["115 et prioritaires"]["series"]
    for ref, indicator in zip(
        series, ("urgence_requests_not_fulfilled", "priority_not_housed"), strict=True
    ):
        _, values = cells(wb, ref["val"])
        assert values == [published(public, m, indicator) for m in MONTHS]
    sources = {
        modality_label("source", s): s
        for s in public.filter(pl.col("dimension") == "source")["modalite"].unique()
    }
    only = by_sheet["Couverture par source"]["series"][1]
    _, categories = cells(wb, only["cat"])
    _, values = cells(wb, only["val"])
    assert set(categories) == set(sources)
    for label, value in zip(categories, values, strict=True):
        assert value == published(
            public, "2025-03", "households_seen_only_by_source", "source", sources[label]
        )


def test_definitions_and_method_are_in_french(ran: Path) -> None:
    wb = openpyxl.load_workbook(reports(ran) / "synchro_2025-03.xlsx")
    definitions = [r for r in wb["Définitions"].iter_rows(min_row=4, values_only=True) if r[0]]
    assert len(definitions) == 17
    assert definitions[0][:2] == ("Ménages sans logement en fin de mois", "ménages")
    assert definitions[0][2].startswith(
        french.typeset("Ménages sans logement en fin de mois : au moins un")
    )
    method = " ".join(r[1] for r in wb["Méthode"].iter_rows(min_row=3, values_only=True) if r[1])
    for expected in ("90 derniers jours", "24 mois précédents", "moins de 11 ménages", "1,5 %"):
        assert french.typeset(expected) in method


def test_html_is_self_contained(ran: Path) -> None:
    html = (reports(ran) / "synchro_2025-03.html").read_text(encoding="utf-8")
    assert html.count("<svg") == len(CHART_SHEETS)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<script" not in html and "<link" not in html and "@import" not in html


def test_the_pdf_chromium_printed_shows_the_report(ran: Path) -> None:
    pdf = pypdfium2.PdfDocument(reports(ran) / "synchro_2025-03.pdf")
    assert len(pdf) >= 3
    first = pdf[0]
    pixels = first.render(scale=1).to_numpy().astype(float)
    assert pixels.std() > 20 and (pixels < 128).mean() > 0.02, "the first page is not blank"
    text = first.get_textpage().get_text_range()
    for expected in (
        "Rapport mensuel : mars 2025",
        "Ménages sans logement en fin de mois",
        "Sur un mois",
        "Ménages sans logement par situation",
    ):
        assert expected in text
    assert re.search(r"Édité le \d\d/\d\d/\d{4}", text)
    assert "< 11" in text or "secret" in text
    everything = "".join(p.get_textpage().get_text_range() for p in pdf)
    assert "Définitions" in everything and "Note de méthode" in everything
    assert "Ménages repérés par chaque source" in everything


def test_html_prints_again_and_without_chromium_xlsx_and_html_still_come(
    ran: Path, public, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chromium = find_chromium()
    assert chromium, "Chromium must be installed (Debian: apt-get install chromium)"
    html = reports(ran) / "synchro_2025-02.html"
    assert print_pdf(chromium, html, tmp_path / "again.pdf") is None
    page = pypdfium2.PdfDocument(tmp_path / "again.pdf")[0]
    assert "Rapport mensuel : février 2025" in page.get_textpage().get_text_range()

    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    written = write_reports(public, tmp_path / "out", Settings(ran), date(2025, 4, 10))
    assert written.months == list(MONTHS)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        [*(f"synchro_{m}.{ext}" for m in MONTHS for ext in ("html", "xlsx")), WRITTEN_FROM]
    )
    assert written.pdf_problem.startswith("no PDF: Chromium was not found on the PATH")


def test_a_report_that_would_not_change_is_not_written_again(
    ran: Path, public, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))  # no PDF: faster, same rule
    out, settings = tmp_path / "out", Settings(ran)
    assert write_reports(public, out, settings, date(2025, 4, 10)).months == list(MONTHS)
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("synchro_*")}
    again = write_reports(public, out, settings, date(2025, 5, 10))  # a later day, same figures
    assert again.months == [] and again.files == []
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("synchro_*")} == stamps
    # February's figures change (a re-delivery): February and the months that show it again
    revised = public.with_columns(
        pl.when((pl.col("mois") == MONTHS[1]) & (pl.col("statut") == "publie"))
        .then(pl.col("valeur") + 1)
        .otherwise(pl.col("valeur"))
        .alias("valeur")
    )
    changed = write_reports(revised, out, settings, date(2025, 5, 10)).months
    assert changed[0] == MONTHS[1] and MONTHS[0] not in changed
    # a file gone is written again
    (out / f"synchro_{MONTHS[0]}.html").unlink()
    assert write_reports(revised, out, settings, date(2025, 5, 10)).months == [MONTHS[0]]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (7, "7"),
        (1234, "1\u202f234"),
        (1234567, "1\u202f234\u202f567"),
        (-1234, "−1\u202f234"),
    ],
)
def test_thousands_are_grouped_by_narrow_spaces(value: int, text: str) -> None:
    assert french.thousands(value) == text


def test_changes_decimals_and_percentages_read_french() -> None:
    assert french.signed(59) == "+59" and french.signed(-1234) == "−1\u202f234"
    assert french.signed(0) == "0"
    assert french.decimal(9.4166) == "9,4" and french.decimal(-1234.55, 2) == "−1\u202f234,55"
    assert french.decimal(-0.01) == "0,0"
    assert french.percent(0.0128) == "+1,3\u202f%" and french.percent(-0.25) == "−25,0\u202f%"
    assert french.percent(0.0) == "0,0\u202f%"


def test_prose_never_breaks_before_a_percent_a_colon_or_inside_guillemets() -> None:
    text = french.typeset("Mesuré sur 2 000 ménages : de 1,6 % à 3,7 % ; « secret » ?")
    assert text == (
        "Mesuré sur 2\u202f000 ménages\u00a0: de 1,6\u202f% à 3,7\u202f%\u202f; "
        "«\u00a0secret\u00a0»\u202f?"
    )


def test_dates_and_month_names_do_not_depend_on_the_locale() -> None:
    assert french.day(date(2025, 12, 5)) == "05/12/2025"
    assert french.month_name(date(2025, 2, 1)) == "février 2025"
    assert french.month_name(date(2025, 8, 1)) == "août 2025"
    assert french.month_short(date(2025, 12, 1)) == "déc. 2025"
    assert [french.month_name(date(2025, m, 1)).split()[0] for m in range(1, 13)] == list(
        french.MONTHS
    )


def test_a_month_without_an_estimate_says_so_in_french() -> None:
    def row(mois: str, indicateur: str, valeur: int) -> dict:
        return {
            "mois": mois,
            "indicateur": indicateur,
            "valeur": valeur,
            "borne_basse": valeur - 10,
            "borne_haute": valeur + 10,
        }

    estimates = pl.DataFrame(
        [
            row("2025-03", "estimated_households_total", 290),
            row("2025-03", "estimated_households_unseen", 10),
            row("2025-03", "stock_households", 280),
            row("2025-04", "stock_households", 285),  # April's lists could not support one
        ]
    )
    march = estimate_text(estimates, date(2025, 3, 1))
    assert march.startswith("Fin mars 2025, environ 290 ménages") and "pas un comptage" in march
    april = estimate_text(estimates, date(2025, 4, 1))
    assert april.startswith("Pas d'estimation des ménages qu'aucun partenaire n'a vus en avril")
    assert "entre 275 et 295 ménages" in april  # the linkage range of the stock stays
    assert estimate_text(estimates, date(2025, 5, 1)) is None  # a month not estimated at all
