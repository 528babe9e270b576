"""One month of observation: household-months, inflows and outflows, provenance.

Plain Python + the SQL files beside it (one per table, each opening with its grain). The
month is computed from the whole staged history as identity knows it at the end of the month,
then written to `core.*` by `warehouse.replace_month`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl

from synchro_dagster import warehouse
from synchro_dagster.ingest.canonical import month_end
from synchro_dagster.observation.ids import current_ids
from synchro_dagster.sources import all_sources

SQL_DIR = Path(__file__).parent
CORE_TABLES = ("core.household_months", "core.household_events", "core.provenance")
STAGED_COLUMNS = (
    "source || ':' || file_sha256 || ':' || row_number AS record_key, source, month, "
    "file_sha256, row_number, record_token, sex, age_band, composition, household_size, situation, "
    "event_date, need_type, need_status, need_since, request_fulfilled, programme, entry_date, "
    "exit_date, exit_destination"
)


@dataclass(frozen=True)
class Window:
    """The dates one month is computed with (docs/domain.md §4)."""

    month: date
    inactivity_days: int = 90
    lookback_months: int = 24
    retention_months: int = 24  # persons unnamed this long before the month take no part

    def params(self) -> dict[str, date]:
        end = month_end(self.month)
        start = end - timedelta(days=self.inactivity_days)
        back = self.month.year * 12 + self.month.month - 1 - self.lookback_months
        return {
            "month": self.month,
            "month_end": end,
            "previous_month": (self.month - timedelta(days=1)).replace(day=1),
            "window_start": start,
            "window_first_month": start.replace(day=1),
            "lookback_start": date(back // 12, back % 12 + 1, 1),
        }


def sql(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def run_sql(conn: duckdb.DuckDBPyConnection, text: str, params: dict[str, date]) -> None:
    """Runs a SQL file with the named parameters it uses."""
    used = set(re.findall(r"\$(\w+)", text))
    conn.execute(text, {k: v for k, v in params.items() if k in used})


def compute_month(conn: duckdb.DuckDBPyConnection, window: Window) -> None:
    """Builds the month's tables as temporary `_household_months`, `_household_events`,
    `_provenance` (and `_evidence`), without writing anything permanent."""
    persons, household_map, members = current_ids(conn, window.month, window.retention_months)
    ranks = pl.DataFrame(
        [(s.id, s.situation_rank) for s in all_sources().values()],
        schema={"source": pl.String, "situation_rank": pl.Int64},
        orient="row",
    )
    broad = pl.DataFrame(
        [
            (s.id, situation, one)
            for s in all_sources().values()
            for situation, precise in s.broad_situations.items()
            for one in precise
        ],
        schema={"source": pl.String, "situation": pl.String, "precise": pl.String},
        orient="row",
    )
    frames = {
        "_persons_now": persons,
        "_household_map": household_map,
        "_members": members,
        "_source_rank": ranks,
        "_broad_situations": broad,
    }
    for name, frame in frames.items():
        conn.register("_frame", frame)
        conn.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM _frame")
        conn.unregister("_frame")
    union, staged = warehouse.staged_history(conn, STAGED_COLUMNS, window.month)
    conn.execute(f"CREATE OR REPLACE TEMP TABLE _staged_history AS {union}", staged)
    params = window.params()
    for name in ("evidence", "household_months", "household_events", "provenance"):
        run_sql(conn, sql(name), params)
        if name == "household_months":  # the events read last month's stored rows
            warehouse.ensure(conn, "core.household_months")


def write_month(conn: duckdb.DuckDBPyConnection, month: date) -> dict[str, int]:
    """Replaces the month in `core.*` with the temporary tables; rows written per table
    ("household_months"…)."""
    counts = warehouse.replace_month(conn, month, {t: "_" + t.split(".")[1] for t in CORE_TABLES})
    return {name.split(".")[1]: n for name, n in counts.items()}


def observe_month(conn: duckdb.DuckDBPyConnection, window: Window) -> dict[str, int]:
    """Computes and writes one month; rows written per core table."""
    compute_month(conn, window)
    return write_month(conn, window.month)
