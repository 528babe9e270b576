"""Rules every month of `core.household_months` obeys (run as Dagster asset checks)."""

from __future__ import annotations

from datetime import date

import duckdb

from synchro_dagster.checks import CheckOutcome


def duplicate_household_months(conn: duckdb.DuckDBPyConnection, month: date) -> int:
    """Households with more than one row in the month (must be 0)."""
    return conn.execute(
        "SELECT count(*) FROM (SELECT household_id FROM core.household_months WHERE month = ? "
        "GROUP BY household_id HAVING count(*) > 1)",
        [month],
    ).fetchall()[0][0]


def untraced_household_months(conn: duckdb.DuckDBPyConnection, month: date) -> int:
    """Household-months with no staged record behind them in core.provenance (must be 0)."""
    return conn.execute(
        "SELECT count(*) FROM core.household_months AS h WHERE h.month = ? AND NOT EXISTS ("
        "SELECT 1 FROM core.provenance AS p WHERE p.month = h.month "
        "AND p.household_id = h.household_id)",
        [month],
    ).fetchall()[0][0]


def household_month_checks(conn: duckdb.DuckDBPyConnection, month: date) -> list[CheckOutcome]:
    duplicates = duplicate_household_months(conn, month)
    untraced = untraced_household_months(conn, month)
    return [
        CheckOutcome(
            "one_row_per_household_month",
            duplicates == 0,
            {"households_with_several_rows": duplicates},
        ),
        CheckOutcome(
            "traced_to_records", untraced == 0, {"household_months_without_records": untraced}
        ),
    ]


def households_by_status(conn: duckdb.DuckDBPyConnection, month: date) -> dict[str, int]:
    return dict(
        conn.execute(
            "SELECT status, count(*) FROM core.household_months WHERE month = ? GROUP BY 1",
            [month],
        ).fetchall()
    )
