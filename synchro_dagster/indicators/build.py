"""Monthly indicators from the household-months and their flows, and the rules they obey."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb

from sources import all_sources
from synchro_dagster.indicators.definitions import INDICATORS, definitions_frame

SQL = (Path(__file__).parent / "indicators.sql").read_text(encoding="utf-8")


def indicators_month(conn: duckdb.DuckDBPyConnection, month: date) -> int:
    """Replaces the month in `marts.indicators` (and refreshes the definitions); rows written."""
    conn.execute(SQL, {"month": month, "sources": sorted(all_sources())})
    conn.register("_definitions", definitions_frame())
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute("CREATE SCHEMA IF NOT EXISTS marts")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS marts.indicators (month DATE NOT NULL, "
            "indicator VARCHAR NOT NULL, dimension VARCHAR, value DOUBLE NOT NULL)"
        )
        conn.execute("DELETE FROM marts.indicators WHERE month = ?", [month])
        conn.execute("INSERT INTO marts.indicators BY NAME SELECT * FROM _indicators")
        conn.execute(
            "CREATE OR REPLACE TABLE marts.indicator_definitions AS SELECT * FROM _definitions"
        )
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise
    finally:
        conn.unregister("_definitions")
    return conn.execute("SELECT count(*) FROM _indicators").fetchall()[0][0]


def stock_balance(conn: duckdb.DuckDBPyConnection, month: date) -> dict[str, float]:
    """stock(M-1), inflow(M), outflow(M), stock(M) as published (0 where nothing is)."""
    previous = (month - timedelta(days=1)).replace(day=1)
    rows = dict(
        conn.execute(
            "SELECT CASE WHEN month = ? THEN 'stock_previous' ELSE indicator END, value "
            "FROM marts.indicators WHERE dimension IS NULL AND ("
            "(month = ? AND indicator IN ('stock_households', 'inflow_households', "
            "'outflow_households')) OR (month = ? AND indicator = 'stock_households'))",
            [previous, month, previous],
        ).fetchall()
    )
    return {
        k: rows.get(k, 0.0)
        for k in ("stock_previous", "inflow_households", "outflow_households", "stock_households")
    }


def balance_holds(figures: dict[str, float]) -> bool:
    return (
        figures["stock_previous"] + figures["inflow_households"] - figures["outflow_households"]
        == figures["stock_households"]
    )


def parts_mismatches(conn: duckdb.DuckDBPyConnection, month: date) -> list[str]:
    """Additive indicators whose parts, in some dimension, do not add up to the total."""
    additive = [i.name for i in INDICATORS if i.additive]
    rows = conn.execute(
        """
        WITH m AS (SELECT * FROM marts.indicators WHERE month = ? AND list_contains(?, indicator)),
        totals AS (SELECT indicator, value FROM m WHERE dimension IS NULL),
        parts AS (
            SELECT indicator, split_part(dimension, '=', 1) AS family, sum(value) AS value
            FROM m WHERE dimension IS NOT NULL GROUP BY ALL
        )
        SELECT p.indicator || ' by ' || p.family || ': parts ' || p.value || ', total '
            || coalesce(t.value, 0)
        FROM parts AS p LEFT JOIN totals AS t USING (indicator)
        WHERE p.value <> coalesce(t.value, 0)
        ORDER BY 1
        """,
        [month, additive],
    ).fetchall()
    return [r[0] for r in rows]
