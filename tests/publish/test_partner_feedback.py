"""Partner feedback: one French workbook per source and month, from what the partner sent and what
the warehouse kept of it — counts, row numbers and reasons, never a value of a row.

A refused delivery's feedback is tested end to end in tests/test_pipeline.py
(`test_a_bad_file_fails_its_source_month_…`), on the same run that refuses it.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import openpyxl
import polars as pl
import pytest
from pipelinekit import MONTHS

from synchro_dagster.ingest.errors import FILE_PROBLEMS, ROW_REASONS
from synchro_dagster.publish.feedback import feedback_path, refusal_reason, row_reason
from synchro_dagster.settings import Settings
from synchro_dagster.sources import all_sources, get

PACKAGE = Path(__file__).resolve().parents[2] / "synchro_dagster"


def query(data: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(data / "warehouse" / "synchro.duckdb"), read_only=True) as conn:
        return conn.execute(sql, params or []).fetchall()


def sheet(path: Path, title: str) -> list[tuple]:
    """The rows of one sheet under its header."""
    return list(openpyxl.load_workbook(path)[title].iter_rows(min_row=2, values_only=True))


def summary(path: Path) -> dict[str, object]:
    return {r[0]: r[1] for r in sheet(path, "Synthèse") if r and r[0]}


def test_every_partner_gets_a_workbook_for_every_month_run(ran):
    folder = ran / "published" / "feedback"
    expected = {feedback_path(folder, s, m) for s in all_sources() for m in MONTHS}
    assert set(folder.rglob("*.xlsx")) == expected


@pytest.mark.parametrize("source", ["sne", "hebergement", "maraudes"])
def test_the_feedback_says_what_the_warehouse_kept_file_by_file_and_row_by_row(ran, source):
    month = MONTHS[-1]
    path = feedback_path(ran / "published" / "feedback", source, month)
    files = query(
        ran,
        "SELECT file_name, rows_read, rows_staged, rows_quarantined, rows_ignored "
        "FROM lineage.files WHERE source = ? AND month = ? ORDER BY file_name",
        [source, month],
    )
    received = sheet(path, "Fichiers reçus")
    assert [(f"{month:%Y-%m}/{source}/{r[0]}", *r[3:]) for r in received] == files
    assert {r[2] for r in received} == {"intégré"}
    quarantined = query(
        ran,
        f"SELECT file_name, row_number, reasons FROM quarantine.{source} WHERE month = ? "
        "ORDER BY file_name, row_number",
        [month],
    )
    rows = [r for r in sheet(path, "Lignes écartées") if r[1] is not None]
    assert [(f"{month:%Y-%m}/{source}/{r[0]}", r[1]) for r in rows] == [
        (f, n) for f, n, _ in quarantined
    ]
    for (_, _, reasons), (_, _, why, fix) in zip(quarantined, rows, strict=True):
        said = " ; ".join(row_reason(get(source), r)[0] for r in sorted(reasons))
        assert why == said[:1].upper() + said[1:] + "."
        assert fix and not re.search(r"\b[a-z]+_[a-z_]+\b", why)  # no code left untranslated
    figures = summary(path)
    assert figures["Lignes lues"] == sum(f[1] for f in files)
    assert figures["Lignes écartées (voir « Lignes écartées »)"] == len(quarantined)
    only = query(
        ran,
        "SELECT value FROM marts.indicators WHERE month = ? AND indicator = "
        "'households_seen_only_by_source' AND dimension = ?",
        [month, f"source={source}"],
    )
    only = int(only[0][0]) if only else 0
    shown = figures["dont ménages qu'aucun autre partenaire ne voit"]
    least = Settings(ran).min_cell  # a partner reads no count the public figures keep secret
    assert shown == (only if only == 0 or only >= least else f"< {least}")
    assert "précédents" in figures["Par rapport aux 3 mois précédents"]


def test_no_workbook_repeats_a_name_or_birth_date_of_the_input(ran):
    persons = pl.read_parquet(ran / "truth" / "persons.parquet")
    names = {
        n.upper() for n in persons["birth_last_name"].to_list() + persons["first_name"].to_list()
    }
    names = {n for n in names if len(n) >= 6}  # long enough not to be a French word
    births = {d.strftime("%d/%m/%Y") for d in persons["birth_date"].drop_nulls().to_list()}
    cells = 0
    for path in (ran / "published" / "feedback").rglob("*.xlsx"):
        for ws in openpyxl.load_workbook(path):
            for row in ws.iter_rows(values_only=True):
                for value in row:
                    if isinstance(value, str):
                        cells += 1
                        words = set(re.findall(r"[\w'-]+", value.upper()))
                        assert not words & names, (path.name, ws.title)
                        assert not [b for b in births if b in value], (path.name, ws.title)
    assert cells > 500


def test_every_quarantine_reason_and_file_problem_is_worded_for_the_partner(ran):
    """A reason code no partner can read is a bug: each one the pipeline produces, and each
    problem code a refusal can carry, has its French text."""
    tables = query(ran, "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'quarantine'")
    produced = {
        (s, r)
        for (s,) in tables
        for (r,) in query(ran, f"SELECT DISTINCT unnest(reasons) FROM quarantine.{s}")
    }
    assert len(produced) >= 5
    for source, code in produced:
        why, fix = row_reason(get(source), code)
        # the partner's own column title may hold "_" (SNE's « SITUATION_LOGEMENT »): no code
        prose = re.sub(r"« [^»]* »", "", why)
        assert why and fix and "{" not in prose and "_" not in prose, code
    raised = set()
    for path in (PACKAGE / "ingest").glob("*.py"):
        raised |= set(re.findall(r'FileRejected\(\s*\w+,\s*"(\w+)"', path.read_text()))
    assert len(raised) >= 8 and raised <= set(FILE_PROBLEMS)
    assert all(refusal_reason(p, "NOM")[0] for p in raised)


def test_reasons_name_the_partners_own_column_and_the_rule(ran):
    sne = get("sne")
    assert "« SITUATION_LOGEMENT »" in row_reason(sne, "unknown_code:situation")[0]
    assert "« DATE_NAISSANCE »" in row_reason(sne, "unparseable_date:birth_date")[0]
    why, _ = row_reason(sne, "rule:household_size:less_than_or_equal_to(30)")
    assert why == "la colonne « NB_PERSONNES » doit être au plus 30"
    assert row_reason(get("hebergement"), "rule:row:exit_after_entry")[0] == (
        "la date de sortie précède la date d'entrée"
    )
    assert set(ROW_REASONS) >= {"no_identity", "unknown_code", "rule", "missing_date"}
    why, fix = refusal_reason("missing_column", "NOM")
    assert "« NOM »" in why and "« NOM »" in fix
