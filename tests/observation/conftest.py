"""A hand-built warehouse for the observation tests: a few staged rows with their identity links.

`Warehouse.record` writes one row the way ingestion and linkage would leave it: the row in
`staging.<source>` (only the columns observation reads), its `identity.person_links` row and
its `identity.households` row. Aliases are written by hand, as linkage would after a merge.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import date
from typing import Any

import duckdb
import pytest

from synchro_dagster.identity.persons import ensure_tables
from synchro_dagster.indicators.build import indicators_month
from synchro_dagster.observation.build import Window, observe_month

# the columns of staging.<source> that observation reads (build.STAGED_COLUMNS)
STAGED_TYPES = {
    "source": "VARCHAR",
    "month": "DATE",
    "file_sha256": "VARCHAR",
    "row_number": "BIGINT",
    "record_token": "VARCHAR",
    "sex": "VARCHAR",
    "age_band": "VARCHAR",
    "composition": "VARCHAR",
    "household_size": "BIGINT",
    "situation": "VARCHAR",
    "event_date": "DATE",
    "need_type": "VARCHAR",
    "need_status": "VARCHAR",
    "need_since": "DATE",
    "request_fulfilled": "BOOLEAN",
    "programme": "VARCHAR",
    "entry_date": "DATE",
    "exit_date": "DATE",
    "exit_destination": "VARCHAR",
}
DATE_COLUMNS = {name for name, kind in STAGED_TYPES.items() if kind == "DATE"}


def day(value: str | date) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


class Warehouse:
    """An in-memory DuckDB warehouse holding staged rows, identity, and what observation writes."""

    def __init__(self) -> None:
        self.conn = duckdb.connect()
        ensure_tables(self.conn)
        self.conn.execute("CREATE SCHEMA staging")
        self._rows: Counter[tuple[str, date]] = Counter()

    # ------------------------------------------------------------------ writing
    def record(
        self,
        source: str,
        person: int,
        household: int,
        event_date: str | date,
        situation: str | None = None,
        *,
        month: str | date | None = None,
        **cells: Any,
    ) -> str:
        """One staged row of `person` in `household`, dated `event_date` and delivered in that
        date's month (or `month`); other staged columns as keywords. Returns its record key."""
        event = day(event_date)
        delivered = day(month) if month is not None else event.replace(day=1)
        unknown = set(cells) - set(STAGED_TYPES)
        if unknown:
            raise TypeError(f"not a staged column: {sorted(unknown)}")
        self._rows[source, delivered] += 1
        sha = hashlib.sha256(f"{source}:{delivered}".encode()).hexdigest()
        values = {
            "source": source,
            "month": delivered,
            "file_sha256": sha,
            "row_number": self._rows[source, delivered],
            "event_date": event,
            "situation": situation,
            **{k: day(v) if k in DATE_COLUMNS and v is not None else v for k, v in cells.items()},
        }
        columns = ", ".join(f"{name} {kind}" for name, kind in STAGED_TYPES.items())
        self.conn.execute(f"CREATE TABLE IF NOT EXISTS staging.{source} ({columns})")
        self.conn.execute(
            f"INSERT INTO staging.{source} ({', '.join(values)}) "
            f"VALUES ({', '.join('?' for _ in values)})",
            list(values.values()),
        )
        key = f"{source}:{sha}:{values['row_number']}"
        self.conn.execute(
            "INSERT INTO identity.person_links VALUES (?, ?, ?, ?)",
            [delivered, key, source, person],
        )
        self.conn.execute(
            "INSERT INTO identity.households SELECT ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM "
            "identity.households WHERE month = ? AND household_id = ? AND person_id = ?)",
            [delivered, household, person] * 2,
        )
        return key

    def alias_person(self, month: str | date, old: int, new: int) -> None:
        self.conn.execute(
            "INSERT INTO identity.person_aliases VALUES (?, ?, ?)", [day(month), old, new]
        )

    def alias_household(self, month: str | date, old: int, new: int) -> None:
        self.conn.execute(
            "INSERT INTO identity.household_aliases VALUES (?, ?, ?)", [day(month), old, new]
        )

    def observe(self, *months: date, inactivity_days: int = 90, lookback_months: int = 24) -> None:
        """Observation then indicators, for each month in the order given."""
        for month in months:
            observe_month(self.conn, Window(month, inactivity_days, lookback_months))
            indicators_month(self.conn, month)

    # ------------------------------------------------------------------ reading
    def row(self, month: date, household: int) -> dict[str, Any] | None:
        """The household-month row, or None when the household has no row that month."""
        found = self.conn.execute(
            "SELECT * FROM core.household_months WHERE month = ? AND household_id = ?",
            [month, household],
        )
        names = [c[0] for c in found.description]
        rows = found.fetchall()
        assert len(rows) <= 1, f"household {household} has {len(rows)} rows in {month}"
        return dict(zip(names, rows[0], strict=True)) if rows else None

    def events(self, month: date) -> set[tuple]:
        """(household_id, flow, type, housing_kind, merged_into) of the month."""
        return set(
            self.conn.execute(
                "SELECT household_id, flow, type, housing_kind, merged_into "
                "FROM core.household_events WHERE month = ?",
                [month],
            ).fetchall()
        )

    def value(self, month: date, indicator: str, dimension: str | None = None) -> float | None:
        """A published figure; None when marts.indicators has no such row."""
        rows = self.conn.execute(
            "SELECT value FROM marts.indicators WHERE month = ? AND indicator = ? "
            "AND dimension IS NOT DISTINCT FROM ?",
            [month, indicator, dimension],
        ).fetchall()
        assert len(rows) <= 1
        return rows[0][0] if rows else None

    def stock(self, *months: date) -> list[float | None]:
        return [self.value(m, "stock_households") for m in months]

    def table(self, name: str) -> list[tuple]:
        """Every row of a table, in a stable order (to compare two runs)."""
        return self.conn.execute(f"SELECT * FROM {name} ORDER BY ALL").fetchall()


@pytest.fixture
def warehouse() -> Warehouse:
    return Warehouse()


@pytest.fixture
def new_warehouse() -> type[Warehouse]:
    """For tests that compare two warehouses built from the same rows."""
    return Warehouse
