"""The rules a staged source-month is judged by, and the figures reported with it.

Computed from what the warehouse holds for the month (after a write, or when an identical
re-delivery left it as it was): schema, rejection rate, column drift, volume.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandera.polars as pa
import polars as pl

from synchro_dagster import warehouse
from synchro_dagster.checks import CheckOutcome
from synchro_dagster.sources.spec import Source

STAGING_CHECKS = ("schema_valid", "rejection_rate", "column_drift", "volume")
VOLUME_TOLERANCE = 0.5  # a month outside ±50 % of the trailing mean is worth a look
TRAILING_MONTHS = 3
VOLUME_MIN_ROWS = 30  # below this trailing mean, month-to-month swings say nothing


def stored_month(
    conn: duckdb.DuckDBPyConnection, source_id: str, month: date
) -> tuple[pl.DataFrame | None, pl.DataFrame | None]:
    """The month's staged and quarantined rows as stored (None: the table does not exist)."""
    present = set(warehouse.existing_tables(conn))
    return tuple(
        conn.sql(f"SELECT * FROM {name} WHERE month = ?", params=[month]).pl()
        if name in present
        else None
        for name in (f"staging.{source_id}", f"quarantine.{source_id}")
    )


def month_figures(
    staged: int, quarantine: pl.DataFrame | None, rows_read: int
) -> dict[str, object]:
    """Counts and rates of a staged source-month, quarantine reasons counted (no row shown)."""
    quarantined = quarantine.height if quarantine is not None else 0
    reasons = (
        quarantine.explode("reasons").group_by("reasons").len().sort("reasons")
        if quarantined
        else None
    )
    return {
        "dagster/row_count": staged,
        "rows_read": rows_read,
        "rows_quarantined": quarantined,
        "rejection_rate": round(quarantined / rows_read, 4) if rows_read else 0.0,
        "quarantine_reasons": {r: n for r, n in reasons.iter_rows()} if reasons is not None else {},
    }


def staging_checks(
    conn: duckdb.DuckDBPyConnection, source: Source, month: date, max_rejection_rate: float
) -> list[CheckOutcome]:
    """The four checks, from what the warehouse now holds for the month."""
    staged, _ = stored_month(conn, source.id, month)
    if staged is None:
        return [CheckOutcome(name, True, {"note": "no data yet"}) for name in STAGING_CHECKS]
    current, before = delivery_history(conn, source.id, month)
    return [
        schema_valid(staged, source),
        rejection_rate(current, max_rejection_rate),
        column_drift(current, before),
        volume(current, before),
    ]


def delivery_history(
    conn: duckdb.DuckDBPyConnection, source_id: str, month: date
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The source's deliveries by month as `lineage.files` holds them — rows read, staged,
    quarantined, canonical columns found, unused columns (position and keyed hash) — for
    `month` and for the months before it."""
    files = conn.sql(
        "SELECT month, sum(rows_read) AS rows_read, sum(rows_staged) AS rows_staged, "
        "sum(rows_quarantined) AS rows_quarantined, "
        "list_sort(list_distinct(flatten(list(columns_found)))) AS columns, "
        "list_sort(list_distinct(flatten(list(columns_unmapped)))) AS unmapped "
        "FROM lineage.files WHERE source = ? AND month <= ? GROUP BY month ORDER BY month",
        params=[source_id, month],
    ).pl()
    return files.filter(pl.col("month") == month), files.filter(pl.col("month") < month)


def schema_valid(staged: pl.DataFrame, source: Source) -> CheckOutcome:
    try:
        source.model.validate(staged, lazy=True)
    except pa.errors.SchemaErrors as exc:
        failures = exc.failure_cases.group_by("column", "check").len()
        return CheckOutcome(
            "schema_valid",
            False,
            {"failures": [f"{c}: {k} ({n})" for c, k, n in failures.iter_rows()]},
        )
    return CheckOutcome("schema_valid", True, {"rows": staged.height})


def rejection_rate(current: pl.DataFrame, max_rejection_rate: float) -> CheckOutcome:
    read = int(current["rows_read"][0]) if current.height else 0
    quarantined = int(current["rows_quarantined"][0]) if current.height else 0
    rate = quarantined / read if read else 0.0
    allowed = max(1.0, max_rejection_rate * read)  # one broken row in a short list is no trend
    return CheckOutcome(
        "rejection_rate",
        quarantined <= allowed,
        {
            "rejection_rate": round(rate, 4),
            "threshold": max_rejection_rate,
            "rows_quarantined": quarantined,
            "rows_allowed": int(allowed),
            "rows_read": read,
        },
    )


def column_drift(current: pl.DataFrame, before: pl.DataFrame) -> CheckOutcome:
    if not (current.height and before.height):
        return CheckOutcome("column_drift", True, {"note": "no previous delivery to compare"})
    now, previous = set(current["columns"][0]), set(before["columns"][-1])
    return CheckOutcome(
        "column_drift",
        now == previous,
        {"columns_added": sorted(now - previous), "columns_missing": sorted(previous - now)},
        severity="WARN",
    )


def volume(current: pl.DataFrame, before: pl.DataFrame) -> CheckOutcome:
    trailing = before.tail(TRAILING_MONTHS)["rows_staged"]
    if not (current.height and trailing.len()):
        return CheckOutcome("volume", True, {"note": "no trailing months to compare"})
    mean = float(trailing.mean())
    staged = int(current["rows_staged"][0])
    ratio = staged / mean if mean else 1.0
    return CheckOutcome(
        "volume",
        abs(ratio - 1) <= VOLUME_TOLERANCE or mean < VOLUME_MIN_ROWS,
        {"rows_staged": staged, "trailing_mean": round(mean, 1), "ratio": round(ratio, 3)},
        severity="WARN",
    )
