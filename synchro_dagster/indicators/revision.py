"""Revised indicators: a month's run computes again the months before it, with identity as
known at its end (a vintage), beside their first computation.

Identity learns: a household first seen in two pieces (a mother at the 115, her children in a
shelter) is found to be one the month the partner lists them together. Its first months then
counted one inflow too many, and the merge month counts a `duplicate_merged` outflow. The
revision of those months, with the ids as known now, counts neither. `marts.indicators` keeps
what each month first said (what was published); `marts.revised_indicators` holds each
vintage's figures for itself and the `revision_months` months before it, counted from the
month before them (computed again too, as their starting stock), so that the balance holds
within the vintage.
"""

from __future__ import annotations

from datetime import date

import duckdb

from synchro_dagster import warehouse
from synchro_dagster.identity.horizon import months_before
from synchro_dagster.indicators.build import balance_holds, compute_indicators
from synchro_dagster.observation.build import Window, compute_month, store_kept
from synchro_dagster.observation.ids import current_ids

TABLE = "marts.revised_indicators"
HEADLINE = ("stock_households", "inflow_households", "outflow_households")


def revise(
    conn: duckdb.DuckDBPyConnection, window: Window, revision_months: int
) -> tuple[list[date], list[date]]:
    """Replaces the vintage `window.month` in `marts.revised_indicators`: the observed months
    from `revision_months` before it to itself, computed again in order with identity as known
    at its end, from the month before them, computed again too as their starting stock. Each
    window's kept records follow from the previous window's (observation/build.py
    `kept_records`); those of the first month revised are stored (`core.kept_evidence`,
    generation "revision"): the next month's revision starts from them. Nothing else is
    written. Returns the months revised, and those where the balance does not hold."""
    vintage = window.month
    first = months_before(vintage, revision_months)
    warehouse.ensure(conn, "core.household_months", "core.household_events", "marts.indicators")
    warehouse.ensure(conn, TABLE)
    months = [
        m
        for (m,) in conn.execute(
            "SELECT DISTINCT month FROM core.household_months WHERE month BETWEEN ? AND ? "
            "ORDER BY 1",
            [months_before(first, 1), vintage],
        ).fetchall()
    ]
    conn.execute(  # the stock the starting month's flows are counted against: never kept
        "CREATE OR REPLACE TEMP TABLE _revised_months AS SELECT * FROM core.household_months "
        "WHERE month = ?",
        [months_before(first, 2)],
    )
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE _revised_events AS SELECT * FROM core.household_events "
        "WHERE false"
    )
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE _revised AS SELECT NULL::DATE AS vintage, * "
        "FROM marts.indicators WHERE false"
    )
    revised = [m for m in months if m >= first]
    ids = current_ids(conn, vintage, window.retention_months)
    headline: dict[date, dict[str, float]] = {}
    for month in months:
        compute_month(
            conn,
            Window(
                month,
                window.inactivity_days,
                window.lookback_months,
                window.retention_months,
                known_at=vintage,
            ),
            previous="_revised_months",
            ids=ids,
        )
        if revised and month == revised[0]:  # where the next month's revision starts
            conn.execute("CREATE OR REPLACE TEMP TABLE _next_kept AS SELECT * FROM _kept")
            conn.execute(
                "CREATE OR REPLACE TEMP TABLE _next_kept_until AS SELECT * FROM _kept_until"
            )
        conn.execute("INSERT INTO _revised_months BY NAME SELECT * FROM _household_months")
        conn.execute("INSERT INTO _revised_events BY NAME SELECT * FROM _household_events")
        compute_indicators(conn, month, "_revised_months", "_revised_events")
        headline[month] = dict(
            conn.execute(
                "SELECT indicator, value FROM _indicators WHERE dimension IS NULL AND "
                "list_contains(?, indicator)",
                [list(HEADLINE)],
            ).fetchall()
        )
        if month >= first:
            conn.execute(
                "INSERT INTO _revised BY NAME SELECT ?::DATE AS vintage, * FROM _indicators",
                [vintage],
            )
    warehouse.replace_month(conn, vintage, {TABLE: "_revised"})
    if revised:
        store_kept(conn, "revision", "_next_kept", "_next_kept_until")
    broken = [
        m
        for m in revised
        if months_before(m, 1) in headline
        and not balance_holds(
            {"stock_previous": headline[months_before(m, 1)]["stock_households"], **headline[m]}
        )
    ]
    return revised, broken
