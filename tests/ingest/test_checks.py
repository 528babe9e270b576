"""The rules a staged source-month is judged by, without Dagster."""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl
import pytest

from synchro_dagster import warehouse
from synchro_dagster.checks import CheckOutcome
from synchro_dagster.ingest.checks import column_drift, schema_valid, staging_checks, volume
from synchro_dagster.ingest.stage import model_version
from synchro_dagster.ingest.store import ingest_source_month
from synchro_dagster.sources import all_sources

MONTH = date(2025, 8, 1)


def _files(conn: duckdb.DuckDBPyConnection, month: date, read: int, quarantined: int, cols) -> None:
    conn.execute(
        "INSERT INTO lineage.files (source, month, file_name, sha256, size_bytes, rows_read, "
        "rows_staged, rows_quarantined, rows_ignored, columns_found, loaded_at) VALUES "
        "('dalo', ?, 'f.xlsx', 's', 1, ?, ?, ?, 0, ?, now())",
        [month, read, read - quarantined, quarantined, cols],
    )


@pytest.mark.parametrize(
    ("read", "quarantined", "passed"),
    [(6, 1, True), (6, 2, False), (100, 5, True), (100, 6, False), (0, 0, True)],
)
def test_rejection_rate_tolerates_one_broken_row_in_a_short_list(read, quarantined, passed):
    with duckdb.connect() as conn:
        warehouse.ensure(conn, "lineage.files", "staging.dalo")
        _files(conn, MONTH, read, quarantined, ["nom"])
        results = {r.name: r for r in staging_checks(conn, all_sources()["dalo"], MONTH, 0.05)}
    assert results["rejection_rate"].passed is passed
    assert results["rejection_rate"].severity == "ERROR"
    assert results["schema_valid"].passed  # an empty month satisfies the model


def test_a_source_never_staged_passes_with_a_note():
    with duckdb.connect() as conn:
        results = staging_checks(conn, all_sources()["sne"], MONTH, 0.05)
    assert [(r.name, r.passed, r.metadata) for r in results] == [
        (name, True, {"note": "no data yet"})
        for name in ("schema_valid", "rejection_rate", "column_drift", "volume")
    ]


def _months(rows: list[tuple[date, int, list[str]]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["month", "rows_staged", "columns"], orient="row")


def test_a_dropped_column_is_a_warning_naming_it():
    before = _months([(date(2025, 7, 1), 100, ["nom", "prenom"])])
    current = _months([(MONTH, 100, ["nom"])])
    drift = column_drift(current, before)
    assert (drift.passed, drift.severity) == (False, "WARN")
    assert drift.metadata == {"columns_added": [], "columns_missing": ["prenom"]}


@pytest.mark.parametrize(("staged", "passed"), [(150, True), (151, False), (51, True), (49, False)])
def test_volume_within_half_of_the_trailing_mean(staged, passed):
    before = _months([(date(2025, m, 1), 100, []) for m in (4, 5, 6, 7)])
    assert volume(_months([(MONTH, staged, [])]), before).passed is passed


def test_schema_valid_trusts_the_validation_of_staging_until_the_model_changes(territory, tmp_path):
    """Rows are validated once, before they are written; the check reads which model did it
    from lineage.files and validates the stored rows again only under another model."""
    sne, db = all_sources()["sne"], tmp_path / "warehouse.duckdb"
    staged = ingest_source_month(
        db, territory / "landing", sne, date(2025, 2, 1), b"checks-key-0123456789", 1.0, "t"
    ).staged
    assert model_version(sne.model) != model_version(all_sources()["dalo"].model)

    def schema() -> CheckOutcome:
        outcomes = staging_checks(conn, sne, date(2025, 2, 1), 1.0)
        return next(o for o in outcomes if o.name == "schema_valid")

    with warehouse.connect(db) as conn:
        trusted = schema()
        assert trusted.passed and trusted.metadata == {
            "rows": staged.height,
            "validated": f"when staged (model {model_version(sne.model)})",
        }
        conn.execute(
            "UPDATE staging.sne SET sex = 'X' WHERE row_number = ?", [staged[0, "row_number"]]
        )
        assert schema().passed  # not read again: the model that validated them is in force
        conn.execute("UPDATE lineage.files SET model_version = 'another model'")
        again = schema()
        assert not again.passed and again.metadata["failures"] == ["sex: isin(('M', 'F')) (1)"]


def test_schema_valid_names_a_missing_or_unknown_column():
    """Not the model ("SneRecord: column_in_dataframe"): the column a data engineer looks for."""
    sne = all_sources()["sne"]
    declared = [c.name for c in warehouse.staging_table("sne").columns]
    rows = pl.DataFrame(schema=[c for c in declared if c != "tok_first_typo2"] + ["extra"])
    outcome = schema_valid(rows, sne)
    assert not outcome.passed
    assert {
        "extra: column_in_schema (1)",
        "tok_first_typo2: column_in_dataframe (1)",
    } <= set(outcome.metadata["failures"])
