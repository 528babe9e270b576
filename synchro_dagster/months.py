"""Months in order: a month's identity and observation are computed only once every month before
it is complete.

Identity carries each person's id from the month before, and a month's flows compare it with
the month before: a month computed before the previous one is complete is wrong, and stays wrong
(nothing recomputes it). A month is *complete* when its indicators were computed after its
identity, its identity after its latest staged file and after the indicators of the month
before, and the month before is complete. `lineage.months_computed` records when identity and
the indicators last computed each month; `lineage.files` when each file was staged.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path

import duckdb

from synchro_dagster import warehouse
from synchro_dagster.settings import Settings, landing_months

TABLE = "lineage.months_computed"
STAGES = ("identity", "marts")
LEGACY = None  # computed_at of a month computed before the table existed: taken as complete


class MonthsOutOfOrder(RuntimeError):
    """A month would be computed before a month it depends on is complete."""


def record(conn: duckdb.DuckDBPyConnection, month: date, stage: str, run_id: str) -> None:
    """Records that `stage` has just computed `month`."""
    if TABLE not in warehouse.existing_tables(conn, "lineage"):
        warehouse.ensure(conn, TABLE)
        if "marts.indicators" in warehouse.existing_tables(conn, "marts"):
            conn.execute(  # months computed before the table existed are complete
                f"INSERT INTO {TABLE} SELECT DISTINCT month, unnest(?), NULL, NULL "
                "FROM marts.indicators",
                [list(STAGES)],
            )
    conn.execute("BEGIN TRANSACTION")
    conn.execute(f"DELETE FROM {TABLE} WHERE month = ? AND stage = ?", [month, stage])
    conn.execute(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?)", [month, stage, run_id, datetime.now()])
    conn.execute("COMMIT")


def forget_all(conn: duckdb.DuckDBPyConnection) -> None:
    """Every month is to be computed again, from the first (after the ids were forgotten)."""
    warehouse.ensure(conn, TABLE)
    conn.execute(f"DELETE FROM {TABLE}")


def _times(conn: duckdb.DuckDBPyConnection) -> tuple[dict, dict]:
    """(month -> stage -> computed_at, month -> when its latest file was staged)."""
    tables = set(warehouse.existing_tables(conn))
    computed: dict[date, dict[str, datetime | None]] = {}
    if TABLE in tables:
        rows = conn.execute(f"SELECT month, stage, computed_at FROM {TABLE}").fetchall()
    elif "marts.indicators" in tables:
        months = conn.execute("SELECT DISTINCT month FROM marts.indicators").fetchall()
        rows = [(m, stage, LEGACY) for (m,) in months for stage in STAGES]
    else:
        rows = []
    for month, stage, at in rows:
        computed.setdefault(month, {})[stage] = at
    staged = {}
    if "lineage.files" in tables:
        staged = dict(
            conn.execute(
                "SELECT month, max(loaded_at) FROM lineage.files GROUP BY month"
            ).fetchall()
        )
    return computed, staged


def _before(a: datetime | None, b: datetime | None) -> bool:
    """`a` happened no later than `b` (a legacy time is before everything)."""
    return a is None or (b is not None and a <= b)


def first_incomplete(
    conn: duckdb.DuckDBPyConnection, month: date, delivered: Iterable[date]
) -> date | None:
    """The earliest month before `month` that is not complete, None if there is none. The months
    considered are those `delivered` (landing folders) and those the warehouse knows of."""
    computed, staged = _times(conn)
    months = sorted({m for m in (*delivered, *computed, *staged) if m < month})
    previous_marts: datetime | None = LEGACY
    for m in months:
        stages = computed.get(m, {})
        if not all(stage in stages for stage in STAGES):
            return m
        identity, marts = stages["identity"], stages["marts"]
        in_order = (
            _before(staged.get(m), identity)
            and _before(previous_marts, identity)
            and _before(identity, marts)
        )
        if not in_order:
            return m
        previous_marts = marts
    return None


def refusal(month: date, missing: date, data_dir: Path) -> str:
    """Why `month` is not computed now, and the command that computes it in order."""
    return (
        f"{month:%Y-%m} cannot be computed before {missing:%Y-%m} is complete: {missing:%Y-%m} "
        "was never computed, or it changed since (a file re-staged, an earlier month "
        "recomputed), and every month carries its ids and its flows from the month before. "
        f"Nothing of {month:%Y-%m} was computed. Run {missing:%Y-%m} and every later month, "
        f"in order:  synchro run --data-dir {data_dir} --months {missing:%Y-%m}:"
    )


def delivered(settings: Settings) -> list[date]:
    """The months with a landing folder, from the first partition on."""
    return [
        date(int(m[:4]), int(m[5:]), 1)
        for m in landing_months(settings.landing_dir)
        if m >= settings.first_month
    ]


def require_in_order(conn: duckdb.DuckDBPyConnection, month: date, settings: Settings) -> None:
    """Raises MonthsOutOfOrder (with what to run) if a month before `month` is not complete."""
    missing = first_incomplete(conn, month, delivered(settings))
    if missing is not None:
        raise MonthsOutOfOrder(refusal(month, missing, settings.data_dir))
