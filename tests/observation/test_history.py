"""A month reads its window's records and, of the months before, only the few that can still
decide a figure (kept.sql, stored in core.kept_evidence): the same tables as from every record.
A revision's windows follow one from another the same way, the first from the previous
revision's: the same revised figures as with every window drawn from the whole history.

On a copy of the session territory, with a 20-day inactivity window so that March's window
starts in March and January and February count only through their kept records.
"""

from __future__ import annotations

import shutil
from contextlib import ExitStack
from datetime import date

import pytest
from pipelinekit import MONTHS, copy

from synchro_dagster import warehouse
from synchro_dagster.indicators import revision
from synchro_dagster.indicators.revision import revise
from synchro_dagster.observation import build
from synchro_dagster.observation.build import CORE_TABLES, KEPT, Window, observe_month
from synchro_dagster.privacy.rules import add_request
from synchro_dagster.settings import Settings

INACTIVITY_DAYS = 20
JAN, FEB, MAR = MONTHS


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


# ---- revisions ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def observed_file(ran, tmp_path_factory) -> str:
    """The session territory observed again with the 20-day window (its warehouse file)."""
    data = copy(ran, tmp_path_factory.mktemp("history"))
    path = Settings(data_dir=data).warehouse_path
    with warehouse.connect(path) as conn:
        observed(conn, MONTHS)
    return str(path)


@pytest.fixture
def two(observed_file, tmp_path):
    """Two copies of the observed territory: one revised as the pipeline does, one with every
    window's kept records drawn from the whole staged history."""
    with ExitStack() as stack:
        connections = []
        for name in ("carried", "redrawn"):
            shutil.copyfile(observed_file, tmp_path / f"{name}.duckdb")
            connections.append(stack.enter_context(warehouse.connect(tmp_path / f"{name}.duckdb")))
        yield connections


def kept_reads(monkeypatch) -> list[tuple[date, list[date], str | None]]:
    """Per window computed from now on: its first month, the months its kept records read from
    staging, and the stored generation of core.kept_evidence they are, if one."""
    seen = []
    draw = build.kept_records

    def kept_records(conn, union, staged, first):
        conn.execute("DROP TABLE IF EXISTS _staged")  # compute_month fills it again after
        draw(conn, union, staged, first)
        months = conn.execute(  # nothing when none was read
            "SELECT DISTINCT month FROM _staged ORDER BY 1"
            if conn.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = '_staged'"
            ).fetchall()[0][0]
            else "SELECT NULL WHERE false"
        ).fetchall()
        (stored,) = conn.execute("SELECT stored FROM _kept_until").fetchall()[0]
        seen.append((first, [m for (m,) in months], stored))

    monkeypatch.setattr(build, "kept_records", kept_records)
    return seen


def revised_from_the_whole_history(conn, vintage: date, months: int) -> list[tuple]:
    """`revise` with every window's kept records drawn from the whole staged history, as before
    they were carried from window to window: the vintage's revised rows."""
    with pytest.MonkeyPatch.context() as mp:
        compute = revision.compute_month

        def from_staging(conn, *args, **kwargs):
            conn.execute(f"DELETE FROM {KEPT}")
            conn.execute("DROP TABLE IF EXISTS _kept_until")
            compute(conn, *args, **kwargs)

        mp.setattr(revision, "compute_month", from_staging)
        revise(conn, Window(vintage, INACTIVITY_DAYS), months)
    return vintage_rows(conn, vintage)


def vintage_rows(conn, vintage: date) -> list[tuple]:
    return conn.execute(
        f"SELECT * FROM {revision.TABLE} WHERE vintage = ? ORDER BY ALL", [vintage]
    ).fetchall()


def generation(conn, kept_for: str) -> list[tuple]:
    return conn.execute(
        f"SELECT * EXCLUDE (inputs) FROM {KEPT} WHERE kept_for = ? ORDER BY ALL", [kept_for]
    ).fetchall()


def test_a_revision_carried_window_to_window_revises_as_from_the_whole_history(two, monkeypatch):
    carried, redrawn = two
    (aliases,) = carried.execute(  # identity as known in March merged earlier pieces
        "SELECT count(*) FROM identity.household_aliases WHERE month > ?", [JAN]
    ).fetchall()[0]
    assert aliases
    before = {
        t: carried.execute(f"SELECT * FROM {t} WHERE month > ? ORDER BY ALL", [JAN]).fetchall()
        for t in CORE_TABLES
    }
    # without the month's own generation March's window, too, follows from February's (with
    # the default five windows, the middle ones do)
    carried.execute(f"DELETE FROM {KEPT} WHERE kept_for = 'month'")
    seen = kept_reads(monkeypatch)
    for vintage in (FEB, MAR):
        revise(carried, Window(vintage, INACTIVITY_DAYS), 1)
    assert seen == [
        (JAN, [], None),  # nothing before January
        (FEB, [JAN], None),  # February's window: January's, from the window before it
        (JAN, [], None),  # nothing before January: nothing stored to start from
        (FEB, [JAN], None),
        (MAR, [FEB], None),
    ]
    monkeypatch.undo()
    for vintage in (FEB, MAR):
        assert vintage_rows(carried, vintage) == revised_from_the_whole_history(redrawn, vintage, 1)
    assert generation(carried, "revision") == generation(redrawn, "revision")
    assert {m for m, *_ in generation(carried, "revision")} == {JAN}  # February's window
    # a month observed again from the revision's generation: the same tables
    seen = kept_reads(monkeypatch)
    for month in (FEB, MAR):
        observe_month(carried, Window(month, INACTIVITY_DAYS))
    assert seen[0] == (FEB, [], "revision")
    assert {
        t: carried.execute(f"SELECT * FROM {t} WHERE month > ? ORDER BY ALL", [JAN]).fetchall()
        for t in CORE_TABLES
    } == before


@pytest.mark.parametrize("change", ["none", "delivered again", "limited"])
def test_a_revision_starts_from_the_last_one_unless_its_records_changed(two, monkeypatch, change):
    # revisions of the month alone (0 months before): February's stores February's window, which
    # holds January's kept records; March's starts from it
    carried, redrawn = two
    for conn in two:
        revise(conn, Window(FEB, INACTIVITY_DAYS), 0)
    source, sha, row = carried.execute(
        f"SELECT source, file_sha256, row_number FROM {KEPT} WHERE kept_for = 'revision' "
        "ORDER BY ALL LIMIT 1"
    ).fetchall()[0]
    where = f"FROM staging.{source} WHERE file_sha256 = '{sha}' AND row_number = {row}"
    for conn in two if change != "none" else ():  # a re-delivery without it, a limitation
        if change == "limited":
            add_request(
                conn, "limit", conn.sql(f"SELECT record_token, tok_name, tok_dob {where}").pl()
            )
        else:
            conn.execute(f"DELETE {where}")
    seen = kept_reads(monkeypatch)
    revise(carried, Window(MAR, INACTIVITY_DAYS), 0)
    if change == "none":
        assert seen == [(FEB, [], "revision"), (MAR, [], "month")]
        return
    # refused: the revision's generation and the month's, both drawn from January
    assert seen == [(FEB, [JAN], None), (MAR, [FEB], None)]
    assert not carried.execute(
        f"SELECT count(*) FROM {KEPT} WHERE kept_for = 'revision' AND file_sha256 = ? "
        "AND row_number = ?",
        [sha, row],
    ).fetchall()[0][0]
    monkeypatch.undo()
    assert vintage_rows(carried, MAR) == revised_from_the_whole_history(redrawn, MAR, 0)
