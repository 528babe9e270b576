"""The analysts' snapshot as an analyst opens it: with the oldest DuckDB the README names, every
table and column commented as the warehouse declares it, codes labelled in French, counts as
integers, and into Excel with `synchro export`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import openpyxl
import pytest

from synchro_dagster.cli import main
from synchro_dagster.publish.labels import dimension_label
from synchro_dagster.publish.snapshot import (
    OLDEST_DUCKDB,
    publish_snapshot,
    snapshot_tables,
)

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="session")
def old_duckdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The oldest DuckDB the README names, installed apart (pip's cache makes it quick)."""
    target = tmp_path_factory.mktemp("old-duckdb")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            f"duckdb=={OLDEST_DUCKDB}",
        ],
        check=True,
        timeout=300,
    )
    return target


def read_with(duckdb_dir: Path, path: Path, sql: str) -> subprocess.CompletedProcess:
    code = (
        "import sys, duckdb\n"
        "con = duckdb.connect(sys.argv[1], read_only=True)\n"
        "print(duckdb.__version__)\n"
        "print(con.execute(sys.argv[2]).fetchall())\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(path), sql],
        env={"PYTHONPATH": str(duckdb_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_oldest_duckdb_the_readme_names_opens_the_snapshot(ran, old_duckdb, tmp_path):
    assert f"DuckDB {OLDEST_DUCKDB}" in README.read_text(encoding="utf-8")
    snapshot = ran / "published" / "analytics.duckdb"
    read = read_with(
        old_duckdb,
        snapshot,
        "SELECT sum(count) FROM marts.indicators WHERE indicator = 'stock_households' "
        "AND dimension IS NULL",
    )
    assert read.returncode == 0, read.stderr
    version, rows = read.stdout.split("\n")[:2]
    assert version == OLDEST_DUCKDB
    with duckdb.connect(str(snapshot), read_only=True) as conn:
        expected = conn.execute(
            "SELECT sum(count) FROM marts.indicators WHERE indicator = 'stock_households' "
            "AND dimension IS NULL"
        ).fetchall()
    assert rows == str(expected) and expected[0][0] > 100
    # the README's queries run as written on that DuckDB
    text = README.read_text(encoding="utf-8").split("Five queries to start with:")[1]
    queries = [q for q in text.split("```sql")[1].split("```")[0].split(";") if q.strip()]
    assert len(queries) == 5
    for query in queries:
        answer = read_with(old_duckdb, snapshot, query)
        assert answer.returncode == 0, (query, answer.stderr)
    # the same file in DuckDB 2.0's own format: that old DuckDB cannot open it
    native = tmp_path / "native.duckdb"
    with duckdb.connect(str(native)) as conn:
        conn.execute("CREATE TABLE t AS SELECT 1 AS n")
    refused = read_with(old_duckdb, native, "SELECT n FROM t")
    assert refused.returncode != 0 and "version" in refused.stderr.lower()


def test_every_table_and_column_carries_its_declared_comment(ran):
    with duckdb.connect(str(ran / "published" / "analytics.duckdb"), read_only=True) as conn:
        tables = dict(
            ((s, t), c)
            for s, t, c in conn.execute(
                "SELECT schema_name, table_name, comment FROM duckdb_tables() "
                "WHERE database_name = current_database()"
            ).fetchall()
        )
        columns = {
            (s, t, c): k
            for s, t, c, k in conn.execute(
                "SELECT schema_name, table_name, column_name, comment FROM duckdb_columns() "
                "WHERE database_name = current_database() AND NOT internal"
            ).fetchall()
        }
    declared = snapshot_tables()
    assert set(tables) == {tuple(t.name.split(".")) for t in declared}
    for spec in declared:
        schema, name = spec.name.split(".")
        assert tables[(schema, name)] == spec.description and spec.description.startswith(
            "Grain: one row per"
        )
        for column in spec.columns:
            assert columns.pop((schema, name, column.name)) == column.comment and column.comment
    assert not columns  # no column the declarations do not know


def test_counts_are_integers_and_durations_apart(ran):
    with duckdb.connect(str(ran / "published" / "analytics.duckdb"), read_only=True) as snap:
        types = dict(
            snap.execute(
                "SELECT column_name, data_type FROM duckdb_columns() "
                "WHERE schema_name = 'marts' AND table_name = 'indicators'"
            ).fetchall()
        )
        rows = snap.execute(
            "SELECT month, indicator, coalesce(dimension, ''), unit, count, months "
            "FROM marts.indicators"
        ).fetchall()
    assert types["count"] == "BIGINT" and types["months"] == "DOUBLE" and "value" not in types
    with duckdb.connect(str(ran / "warehouse" / "synchro.duckdb"), read_only=True) as live:
        values = {
            (m, i, d): v
            for m, i, d, v in live.execute(
                "SELECT month, indicator, coalesce(dimension, ''), value FROM marts.indicators"
            ).fetchall()
        }
    assert len(rows) == len(values)
    units = set()
    for month, indicator, dimension, unit, count, months in rows:
        units.add(unit)
        assert (count is None) != (months is None)
        assert (months is not None) == (unit == "months")
        assert (count if months is None else months) == values[(month, indicator, dimension)]
    assert units == {"households", "persons", "requests", "months"}


def test_a_count_that_is_not_whole_is_refused(tmp_path):
    with duckdb.connect() as conn:
        conn.execute("CREATE SCHEMA marts")
        conn.execute(
            "CREATE TABLE marts.indicators AS "
            "SELECT DATE '2025-01-01' AS month, 'stock_households' AS indicator, "
            "NULL::VARCHAR AS dimension, 2.5::DOUBLE AS value"
        )
        conn.execute(
            "CREATE TABLE marts.indicator_definitions AS "
            "SELECT 'stock_households' AS indicator, 'households' AS unit"
        )
        with pytest.raises(ValueError, match="not a whole number"):
            publish_snapshot(conn, tmp_path / "analytics.duckdb")
    assert not (tmp_path / "analytics.duckdb").exists()


def test_every_code_an_analyst_meets_has_its_french_label(ran):
    with duckdb.connect(str(ran / "published" / "analytics.duckdb"), read_only=True) as conn:
        labels = {
            (f, c): lib for f, c, lib in conn.execute("SELECT * FROM marts.code_labels").fetchall()
        }
        met = conn.execute(
            "SELECT DISTINCT split_part(dimension, '=', 1), split_part(dimension, '=', 2), "
            "dimension FROM marts.indicators WHERE dimension IS NOT NULL"
        ).fetchall()
        met_codes = conn.execute(
            "SELECT DISTINCT 'situation', situation FROM core.household_months "
            "UNION SELECT DISTINCT 'ethos', ethos FROM core.household_months "
            "WHERE ethos IS NOT NULL "
            "UNION SELECT DISTINCT 'composition', composition FROM core.household_months "
            "UNION SELECT DISTINCT 'status', status FROM core.household_months "
            "UNION SELECT DISTINCT 'flow', flow FROM core.household_events "
            "UNION SELECT DISTINCT 'source', unnest(sources) FROM core.household_months"
        ).fetchall()
    assert len(met) > 30
    for family, code, dimension in met:
        assert labels[(family, code)] == dimension_label(dimension)
    for family, code in met_codes:
        assert labels[(family, code)], (family, code)
    assert labels[("situation", "RUE")].startswith("Rue")


def test_synchro_export_puts_the_figures_into_an_excel_workbook(ran, tmp_path, capsys):
    out = tmp_path / "indicateurs.xlsx"
    assert main(["export", "--data-dir", str(ran), "--out", str(out)]) == 0
    assert out.stat().st_mode & 0o777 == 0o600
    ws = openpyxl.load_workbook(out).active
    header, *rows = list(ws.iter_rows(values_only=True))
    assert header == (
        "mois",
        "indicateur",
        "libelle_indicateur",
        "dimension",
        "modalite",
        "libelle_modalite",
        "effectif",
        "duree_mois",
    )
    with duckdb.connect(str(ran / "published" / "analytics.duckdb"), read_only=True) as conn:
        (n,) = conn.execute("SELECT count(*) FROM marts.indicators").fetchall()[0]
        (stock,) = conn.execute(
            "SELECT count FROM marts.indicators WHERE indicator = 'stock_households' "
            "AND dimension IS NULL AND month = DATE '2025-03-01'"
        ).fetchall()[0]
    assert len(rows) == n and f"{n:,} rows" in capsys.readouterr().out
    row = next(r for r in rows if r[:2] == ("2025-03", "stock_households") and r[3] is None)
    assert row[2] == "Ménages sans logement en fin de mois" and row[5] == "Ensemble"
    assert row[6] == stock and isinstance(row[6], int) and row[7] is None
    sql = "SELECT code, libelle FROM marts.code_labels WHERE family = 'situation' ORDER BY code"
    assert main(["export", "--data-dir", str(ran), "--out", str(out), "--sql", sql]) == 0
    situations = list(openpyxl.load_workbook(out).active.iter_rows(min_row=2, values_only=True))
    assert ("RUE", "Rue, abri de fortune, véhicule, campement") in situations
