"""The warehouse module: declared tables, the one transactional month write, the staged history."""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl
import pytest

from synchro_dagster import warehouse
from synchro_dagster.sources import all_sources

JAN, FEB = date(2025, 1, 1), date(2025, 2, 1)


def _indicators(month: date, values: list[float]) -> pl.DataFrame:
    return pl.DataFrame(
        {"month": [month] * len(values), "indicator": ["x"] * len(values), "value": values},
        schema_overrides={"month": pl.Date},
    )


def test_replacing_a_month_leaves_the_others_and_a_rerun_changes_nothing():
    with duckdb.connect() as conn:
        warehouse.replace_month(conn, JAN, {"marts.indicators": _indicators(JAN, [1.0, 2.0])})
        warehouse.replace_month(conn, FEB, {"marts.indicators": _indicators(FEB, [3.0])})
        for _ in range(2):
            counts = warehouse.replace_month(
                conn, JAN, {"marts.indicators": _indicators(JAN, [5.0])}
            )
        rows = conn.execute("SELECT month, value FROM marts.indicators ORDER BY 1").fetchall()
    assert counts == {"marts.indicators": 1}
    assert rows == [(JAN, 5.0), (FEB, 3.0)]


def test_a_failed_write_leaves_every_table_as_it_was():
    with duckdb.connect() as conn:
        warehouse.replace_month(conn, JAN, {"marts.indicators": _indicators(JAN, [1.0])})
        broken = _indicators(JAN, [2.0]).with_columns(pl.lit(None, pl.Float64).alias("value"))
        with pytest.raises(duckdb.ConstraintException):  # value is NOT NULL
            warehouse.replace_month(
                conn,
                JAN,
                {
                    "marts.indicator_definitions": pl.DataFrame({"indicator": ["y"]}),
                    "marts.indicators": broken,
                },
            )
        assert conn.execute("SELECT value FROM marts.indicators").fetchall() == [(1.0,)]
        assert conn.execute("SELECT count(*) FROM marts.indicator_definitions").fetchall() == [(0,)]


def test_a_table_replaced_whole_follows_its_declaration():
    # a warehouse made before definition_fr was declared: the next write brings the column in
    with duckdb.connect() as conn:
        conn.execute("CREATE SCHEMA marts")
        conn.execute("CREATE TABLE marts.indicator_definitions (indicator VARCHAR, unit VARCHAR)")
        conn.execute("INSERT INTO marts.indicator_definitions VALUES ('old', 'x')")
        rows = pl.DataFrame({"indicator": ["y"], "definition_fr": ["en français"]})
        warehouse.replace_month(conn, JAN, {"marts.indicator_definitions": rows})
        found = conn.execute(
            "SELECT indicator, definition_fr FROM marts.indicator_definitions"
        ).fetchall()
        columns = conn.execute(
            "SELECT column_name, comment FROM duckdb_columns() "
            "WHERE table_name = 'indicator_definitions'"
        ).fetchall()
    assert found == [("y", "en français")]
    spec = warehouse.table("marts.indicator_definitions")
    assert columns == [(c.name, c.comment or None) for c in spec.columns]


def test_a_source_month_replaces_only_that_source_in_a_shared_table():
    def files(source: str, name: str) -> pl.DataFrame:
        return pl.DataFrame(
            [
                {
                    "source": source, "month": JAN, "file_name": name, "sha256": "s",
                    "size_bytes": 1, "rows_read": 1, "rows_staged": 1, "rows_quarantined": 0,
                    "rows_ignored": 0, "loaded_at": JAN,
                }
            ]
        )  # fmt: skip

    with duckdb.connect() as conn:
        warehouse.replace_month(conn, JAN, {"lineage.files": files("sne", "a")}, source="sne")
        warehouse.replace_month(conn, JAN, {"lineage.files": files("dalo", "b")}, source="dalo")
        warehouse.replace_month(conn, JAN, {"lineage.files": files("sne", "c")}, source="sne")
        names = conn.execute("SELECT file_name FROM lineage.files ORDER BY 1").fetchall()
    assert names == [("b",), ("c",)]


def test_core_tables_have_declared_columns_before_any_query_runs():
    with duckdb.connect() as conn:
        warehouse.ensure(conn, "core.household_months")
        columns = conn.execute(
            "SELECT column_name, data_type, comment FROM duckdb_columns() "
            "WHERE schema_name = 'core' AND table_name = 'household_months'"
        ).fetchall()
        (grain,) = conn.execute(
            "SELECT comment FROM duckdb_tables() WHERE table_name = 'household_months'"
        ).fetchall()[0]
    assert [(c, t) for c, t, _ in columns][:3] == [
        ("month", "DATE"),
        ("household_id", "BIGINT"),
        ("status", "VARCHAR"),
    ]
    assert all(comment for _, _, comment in columns)
    assert grain == warehouse.table("core.household_months").description
    assert grain.startswith("Grain: one row per household")


def test_the_staged_history_reads_every_staging_table_up_to_a_month():
    with duckdb.connect() as conn:
        for source, month in (("sne", JAN), ("dalo", FEB)):
            conn.execute("CREATE SCHEMA IF NOT EXISTS staging")
            conn.execute(f"CREATE TABLE staging.{source} AS SELECT ?::DATE AS month", [month])
        union, params = warehouse.staged_history(conn, "month", JAN)
        assert conn.execute(union, params).fetchall() == [(JAN,)]
        union, params = warehouse.staged_history(conn, "month", FEB)
        assert sorted(conn.execute(union, params).fetchall()) == [(JAN,), (FEB,)]


def test_every_table_holding_tokens_or_ids_is_registered_as_personal():
    personal = {t.name: t.subject for t in warehouse.personal_tables()}
    for source in all_sources():
        assert "tok_name" in personal[f"staging.{source}"]
        assert personal[f"quarantine.{source}"] == ("file_sha256", "row_number")
    assert {"identity.person_links", "identity.corrections", "core.household_months"} <= set(
        personal
    )
    assert not {"marts.indicators", "identity.churn", "lineage.files"} & set(personal)
    for table in warehouse.catalogue():  # a subject column is a real column
        assert set(table.subject) <= {c.name for c in table.columns}, table.name


def test_a_run_opens_the_warehouse_once_and_its_steps_keep_their_own_transactions(
    tmp_path, monkeypatch
):
    path = tmp_path / "warehouse" / "synchro.duckdb"
    opened = []
    real = duckdb.connect
    monkeypatch.setattr(duckdb, "connect", lambda *a, **k: opened.append(a) or real(*a, **k))
    with warehouse.held_open(path):
        with warehouse.connect(path) as conn:
            warehouse.replace_month(conn, JAN, {"marts.indicators": _indicators(JAN, [1.0])})
        broken = _indicators(FEB, [2.0]).with_columns(pl.lit(None, pl.Float64).alias("value"))
        with pytest.raises(duckdb.ConstraintException), warehouse.connect(path) as conn:
            warehouse.replace_month(conn, FEB, {"marts.indicators": broken})
        with warehouse.read_only(path) as conn:  # a step reading: the same database
            during = conn.execute("SELECT month, value FROM marts.indicators").fetchall()
        with warehouse.held_open(path), warehouse.connect(path) as conn:  # nested: the same
            conn.execute("CREATE TEMP TABLE scratch AS SELECT 1 AS x")
        with warehouse.connect(path) as conn:  # a step's temporary tables went with it
            temp = conn.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'scratch'"
            ).fetchall()
    assert len(opened) == 1
    assert during == [(JAN, 1.0)]
    assert temp == [(0,)]
    with real(str(path), read_only=True) as conn:  # closed at the end: another may open it
        assert conn.execute("SELECT month, value FROM marts.indicators").fetchall() == [(JAN, 1.0)]
    assert oct(path.stat().st_mode & 0o777) == "0o600"
