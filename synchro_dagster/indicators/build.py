"""Monthly indicators from the household-months and their flows, and the rules they obey."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb

from synchro_dagster import warehouse
from synchro_dagster.checks import CheckOutcome
from synchro_dagster.indicators.definitions import INDICATORS, definitions_frame
from synchro_dagster.sources import all_sources

SQL = (Path(__file__).parent / "indicators.sql").read_text(encoding="utf-8")


def compute_indicators(
    conn: duckdb.DuckDBPyConnection,
    month: date,
    households: str = "core.household_months",
    events: str = "core.household_events",
) -> None:
    """The month's indicators as the temporary `_indicators`, from the household-months and
    events in `households` and `events` (the stored ones, or a revision's)."""
    warehouse.ensure(conn, "core.household_months", "core.household_events")
    conn.execute(f"CREATE OR REPLACE TEMP VIEW _month_households AS SELECT * FROM {households}")
    conn.execute(f"CREATE OR REPLACE TEMP VIEW _month_events AS SELECT * FROM {events}")
    conn.execute(SQL, {"month": month, "sources": sorted(all_sources())})


def indicators_month(conn: duckdb.DuckDBPyConnection, month: date) -> int:
    """Replaces the month in `marts.indicators` (and refreshes the definitions); rows written."""
    compute_indicators(conn, month)
    counts = warehouse.replace_month(
        conn,
        month,
        {"marts.indicators": "_indicators", "marts.indicator_definitions": definitions_frame()},
    )
    return counts["marts.indicators"]


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


def indicator_checks(
    conn: duckdb.DuckDBPyConnection, month: date
) -> tuple[dict[str, int], list[CheckOutcome]]:
    """The month's headline figures (stock balance terms) and the two checks on them."""
    figures = stock_balance(conn, month)
    headline = {k: int(v) for k, v in figures.items()}
    mismatches = parts_mismatches(conn, month)
    return headline, [
        CheckOutcome("stock_balance", balance_holds(figures), headline),
        CheckOutcome(
            "parts_sum_to_totals", not mismatches, {"mismatches": "; ".join(mismatches) or "none"}
        ),
    ]
