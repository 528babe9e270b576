"""A month reads its window's records and, of the months before, only the few that can still
decide a figure (kept.sql, stored in core.kept_evidence): the same tables as from every record.

On a copy of the session territory, with a 20-day inactivity window so that March's window
starts in March and January and February count only through their kept records.
"""

from __future__ import annotations

from datetime import date

import pytest
from pipelinekit import MONTHS, copy

from synchro_dagster import warehouse
from synchro_dagster.observation import build
from synchro_dagster.observation.build import CORE_TABLES, KEPT, Window, observe_month
from synchro_dagster.settings import Settings

INACTIVITY_DAYS = 20


def observed(conn, months: list[date]) -> dict[str, list[tuple]]:
    """Observes `months` in order; every core table's rows of those months."""
    for month in months:
        observe_month(conn, Window(month, INACTIVITY_DAYS))
    return {
        table: conn.execute(
            f"SELECT * FROM {table} WHERE month IN ? ORDER BY ALL", [months]
        ).fetchall()
        for table in CORE_TABLES
    }


@pytest.fixture
def conn(ran, tmp_path):
    with warehouse.connect(Settings(data_dir=copy(ran, tmp_path)).warehouse_path) as conn:
        yield conn


def test_a_month_from_its_window_and_the_kept_records_is_the_month_from_every_record(
    conn, monkeypatch
):
    reduced = observed(conn, MONTHS)
    kept, staged = conn.execute(
        f"SELECT (SELECT count(*) FROM {KEPT} WHERE month < $march), "
        "(SELECT count(*) FROM identity.person_links WHERE month < $march)",
        {"march": MONTHS[2]},
    ).fetchall()[0]
    assert 0 < kept < staged  # January and February: part of their records only
    every = build.sql

    def keep_every_record(name: str) -> str:
        if name == "kept":
            return "CREATE OR REPLACE TEMP TABLE _kept AS SELECT * FROM _kept_in"
        return every(name)

    monkeypatch.setattr(build, "sql", keep_every_record)
    conn.execute(f"DELETE FROM {KEPT}")
    assert observed(conn, MONTHS) == reduced
    (every_record,) = conn.execute(f"SELECT count(*) FROM {KEPT}").fetchall()[0]
    assert every_record == staged  # the second time, every record of January and February


def test_a_month_out_of_the_window_whose_records_changed_is_drawn_again(conn):
    observed(conn, MONTHS)
    # a January record kept for its person leaves staging, as a re-delivery without it would,
    # without January being observed again
    source, sha, row = conn.execute(
        f"SELECT source, file_sha256, row_number FROM {KEPT} WHERE month = ? ORDER BY ALL LIMIT 1",
        [MONTHS[0]],
    ).fetchall()[0]
    conn.execute(
        f"DELETE FROM staging.{source} WHERE file_sha256 = ? AND row_number = ?", [sha, row]
    )
    (before,) = conn.execute(f"SELECT any_value(inputs) FROM {KEPT}").fetchall()[0]
    march = observed(conn, MONTHS[2:])
    assert conn.execute(f"SELECT any_value(inputs) FROM {KEPT}").fetchall()[0][0] != before
    assert not conn.execute(
        f"SELECT count(*) FROM {KEPT} WHERE file_sha256 = ? AND row_number = ?", [sha, row]
    ).fetchall()[0][0]
    conn.execute(f"DELETE FROM {KEPT}")  # nothing remembered: March from staging alone
    assert observed(conn, MONTHS[2:]) == march
