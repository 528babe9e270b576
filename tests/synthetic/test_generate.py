"""The simulated territory: deterministic, readable by partner tools, consistent with its truth."""

from __future__ import annotations

import csv
import unicodedata
from datetime import date
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from synchro_dagster.synthetic import TerritoryParams, generate
from synchro_dagster.synthetic.layouts import HEBERGEMENT, MARAUDES, SIAO_INSERTION, SNE, SYPLO

START = date(2025, 1, 1)
HOUSEHOLDS = 400
PARAMS = TerritoryParams()


@pytest.fixture(scope="module")
def territory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("territory")
    generate(out, START, 4, households=HOUSEHOLDS, seed=7)
    return out


def truth(out: Path, name: str) -> pl.DataFrame:
    return pl.read_parquet(out / "truth" / f"{name}.parquet")


def files(out: Path) -> list[Path]:
    return sorted(p for p in (out / "landing").rglob("*") if p.is_file())


ENCODING = {
    SIAO_INSERTION.file_name.split("{")[0]: "cp1252",
    SNE.file_name.split("{")[0]: "cp1252",
    SYPLO.file_name.split("{")[0]: "utf-8-sig",
}


def csv_rows(path: Path) -> list[list[str]]:
    encoding = next(e for prefix, e in ENCODING.items() if path.name.startswith(prefix))
    with path.open(encoding=encoding, newline="") as f:
        return list(csv.reader(f, delimiter=";"))


def xlsx_rows(path: Path) -> list[tuple]:
    wb = openpyxl.load_workbook(path, read_only=True)
    ws = wb.worksheets[-1]  # the data sheet comes last (a summary sheet may precede it)
    rows = [tuple(c for c in row) for row in ws.iter_rows(values_only=True)]
    wb.close()
    return rows


def cells(path: Path) -> list:
    return csv_rows(path) if path.suffix == ".csv" else xlsx_rows(path)


def test_same_seed_same_territory_other_seed_other_territory(territory, tmp_path):
    again = tmp_path / "again"
    generate(again, START, 4, households=HOUSEHOLDS, seed=7)
    for path in files(territory):
        twin = again / path.relative_to(territory)
        assert cells(twin) == cells(path), path.name
    for name in ("records", "states", "persons", "indicators"):
        assert truth(again, name).equals(truth(territory, name)), name
    other = tmp_path / "other"
    generate(other, START, 1, households=400, seed=8)
    assert not truth(other, "persons").equals(truth(territory, "persons"))


def test_every_file_opens_in_the_partners_reader(territory):
    paths = files(territory)
    assert {p.suffix for p in paths} == {".csv", ".xlsx"}
    for path in paths:
        if path.suffix == ".csv":
            rows = csv_rows(path)
            assert len({len(r) for r in rows}) == 1, f"{path.name}: ragged CSV"
        else:
            assert len(xlsx_rows(path)) > 1


def _header_index(rows: list) -> int:
    return next(i for i, row in enumerate(rows) if sum(1 for c in row if c not in (None, "")) > 3)


def test_truth_row_numbers_point_at_data_rows_and_count_them(territory):
    records = truth(territory, "records")
    for path in files(territory):
        rel = path.relative_to(territory / "landing").as_posix()
        numbers = records.filter(pl.col("file") == rel)["row_number"].to_list()
        rows = cells(path)
        header = _header_index(rows)
        data = [
            i + 1
            for i, row in enumerate(rows)
            if i > header and sum(1 for c in row if c not in (None, "")) > 1
        ]
        assert sorted(numbers) == data, rel


def test_truth_is_consistent(territory):
    records, states = truth(territory, "records"), truth(territory, "states")
    assert records["person_id"].null_count() == 0 and records["household_id"].null_count() == 0
    per_month = records.group_by("month", "person_id").agg(pl.col("household_id").n_unique())
    assert per_month["household_id"].max() == 1  # a person is in one household a month
    assert states.group_by("household_id", "month").len()["len"].max() == 1
    assert set(records["household_id"].unique()) <= set(states["household_id"].unique())


@pytest.mark.parametrize("scope", ["all", "observable"])
def test_stock_balance_holds_every_month_in_the_truth(territory, scope):
    ind = truth(territory, "indicators").filter(
        pl.col("scope") == scope, pl.col("dimension").is_null()
    )
    wide = ind.pivot(on="indicator", index="month", values="value").sort("month")
    previous = HOUSEHOLDS if scope == "all" else 0  # everyone at the start was without a home
    for row in wide.iter_rows(named=True):
        assert (
            row["stock_households"]
            == previous + row["inflow_households"] - row["outflow_households"]
        ), row["month"]
        previous = row["stock_households"]


def test_totals_equal_the_sum_of_their_parts(territory):
    ind = truth(territory, "indicators")
    totals = ind.filter(pl.col("dimension").is_null()).select(
        "month", "scope", "indicator", total="value"
    )
    parts = (
        ind.filter(pl.col("dimension").is_not_null())
        .with_columns(pl.col("dimension").str.split("=").list.first().alias("by"))
        .group_by("month", "scope", "indicator", "by")
        .agg(pl.col("value").sum())
    )
    joined = parts.join(totals, on=["month", "scope", "indicator"])
    assert joined.height > 0
    assert (joined["value"] == joined["total"]).all()
    stock = totals.filter(pl.col("indicator").str.starts_with("stock_"))
    both = stock.pivot(on="scope", index=["month", "indicator"], values="total")
    assert (both["observable"] <= both["all"]).all()  # one cannot see more than there is


def _strip(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn").upper()


def test_noise_rates_match_the_configured_ones(tmp_path):
    out = tmp_path / "t"
    generate(out, START, 3, households=1500, seed=21)
    records = truth(out, "records")
    n = records.height
    assert n > 15_000
    rate = {
        code: records.filter(pl.col("noise").list.contains(code)).height / n
        for code in (
            "typo_first_name",
            "typo_last_name",
            "first_last_swapped",
            "placeholder_birth_date",
        )
    }
    noise = PARAMS.noise
    assert abs(rate["typo_first_name"] - noise.typo_first_name) < 0.005
    assert abs(rate["typo_last_name"] - noise.typo_last_name) < 0.005
    assert abs(rate["first_last_swapped"] - noise.first_last_swapped) < 0.004
    # a placeholder replaces only dates that are not dropped or otherwise altered
    assert (
        0.5 * noise.placeholder_birth_date
        < rate["placeholder_birth_date"]
        < noise.placeholder_birth_date
    )
    defects = records["defect"].is_not_null().mean()
    assert abs(defects - PARAMS.defect_rate) < 0.002


def test_noise_flags_are_honest(territory):
    """A record flagged with no noise shows the true first name; a flagged typo does not."""
    records, persons = truth(territory, "records"), truth(territory, "persons")
    layout = HEBERGEMENT["HOTEL"]  # separate name columns, one row per person
    path = next((territory / "landing").rglob(layout.file_name.format(month="2025-02")))
    rows = xlsx_rows(path)
    header = rows[_header_index(rows)]
    first_col = header.index("PRENOM")
    rel = path.relative_to(territory / "landing").as_posix()
    sample = records.filter(pl.col("file") == rel, pl.col("defect").is_null()).join(
        persons, on="person_id"
    )
    clean = typo = 0
    for rec in sample.iter_rows(named=True):
        shown = rows[rec["row_number"] - 1][first_col]
        if not rec["noise"] or set(rec["noise"]) <= {
            "accents_lost",
            "upper_case",
            "usage_name",
            "missing_birth_date",
        }:
            assert _strip(shown) == _strip(rec["first_name"])
            clean += 1
        elif (
            "typo_first_name" in rec["noise"]
            and "first_last_swapped" not in rec["noise"]
            and "compound_first_shortened" not in rec["noise"]
        ):
            assert _strip(shown) != _strip(rec["first_name"])
            typo += 1
    assert clean > 50


def test_defects_are_visible_in_the_files(territory):
    records = truth(territory, "records").filter(pl.col("defect").is_not_null())
    assert set(records["defect"].unique()) == {"no_name", "impossible_date", "unknown_code"}
    for rec in records.iter_rows(named=True):
        path = territory / "landing" / rec["file"]
        row = [str(c) for c in cells(path)[rec["row_number"] - 1] if c not in (None, "")]
        if rec["defect"] == "impossible_date":
            assert any("31/02/" in c or "-02-31" in c for c in row)
        elif rec["defect"] == "unknown_code":
            assert any(c in ("99 - Code inconnu", "XX") for c in row)


def test_the_territory_looks_like_a_metropole(territory):
    states = truth(territory, "states").filter(pl.col("month") == START)
    mix = states.group_by("composition").len().sort("len", descending=True)
    assert mix["composition"][0] == "homme_seul"
    persons = truth(territory, "persons")
    assert persons.filter(pl.col("usage_last_name").is_not_null()).height > 0
    assert persons["first_name"].str.contains("-").any()  # compound first names
    assert persons["origin"].n_unique() >= 4
    maraudes = xlsx_rows(next((territory / "landing").rglob("maraudes_*.xlsx")))
    header = _header_index(maraudes)
    assert header >= 2 and "NOM Prénom" in maraudes[header]
    month = territory / "landing" / "2025-02" / "hebergement"
    headers = {tuple(xlsx_rows(p)[_header_index(xlsx_rows(p))]) for p in month.glob("*.xlsx")}
    assert len(headers) == len(list(month.glob("*.xlsx"))) >= 3
    assert (
        MARAUDES.decoy_sheet
        in openpyxl.load_workbook(
            next((territory / "landing").rglob("maraudes_*.xlsx")), read_only=True
        ).sheetnames
    )
