"""Retention with a clock: 30 months of a tiny territory, purged month after month as the
monthly job would, against the same months never purged.

The construction (measured: a month through Dagster costs ~4.5 s, through the functional core
~1.5 s, two thirds of it staging): every month is staged once, then linked, observed and counted
month by month with the functional core (the code the assets run) — without retention up to
month 30 ("kept"), and, from a copy taken after month 24 (no one can be 24 months old before),
with a retention run in each following month before the month is computed ("purged"), exactly
as the schedule runs it after the monthly job.
"""

from __future__ import annotations

import os
import shutil
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
from pipelinekit import KEY, copy, run

from synchro_dagster import warehouse
from synchro_dagster.defs import build_definitions
from synchro_dagster.defs.landing import requests_for, scan_landing
from synchro_dagster.identity.horizon import forgotten_links, months_before
from synchro_dagster.identity.persons import link_month, write_month
from synchro_dagster.indicators.build import indicators_month
from synchro_dagster.ingest.stage import stage_month
from synchro_dagster.ingest.store import write_source_month
from synchro_dagster.observation.build import Window, observe_month
from synchro_dagster.privacy import audit
from synchro_dagster.privacy.retention import RULES, rule_for, run_retention
from synchro_dagster.publish.snapshot import SNAPSHOT_TABLES
from synchro_dagster.settings import Settings
from synchro_dagster.sources import all_sources
from synchro_dagster.synthetic import generate

START, MONTHS, COPY_AFTER = date(2023, 1, 1), 30, 24


def month(i: int) -> date:
    """The i-th month of the territory (1-based)."""
    return months_before(START, -(i - 1))


def compute(conn: duckdb.DuckDBPyConnection, m: date) -> None:
    write_month(conn, link_month(conn, m))
    observe_month(conn, Window(m))
    indicators_month(conn, m)


def figures(conn: duckdb.DuckDBPyConnection, m: date) -> list[tuple]:
    return conn.execute(
        "SELECT indicator, coalesce(dimension, ''), value FROM marts.indicators WHERE month = ? "
        "ORDER BY ALL",
        [m],
    ).fetchall()


def last_links(conn: duckdb.DuckDBPyConnection) -> dict[int, date]:
    """Each person (as merges made them) -> the month of their latest link."""
    everyone = forgotten_links(conn, date(9999, 1, 1), 0, date.max)  # cutoff beyond every link
    return dict(everyone.group_by("current_person_id").agg(pl.col("month").max()).iter_rows())


@pytest.fixture(scope="module")
def thirty(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("retention")
    data = root / "kept"
    generate(data, START, MONTHS, households=25, seed=7)
    key = KEY.encode()
    path = Settings(data_dir=data).warehouse_path
    with warehouse.connect(path) as conn:
        for i in range(1, MONTHS + 1):
            for source in all_sources().values():
                write_source_month(conn, stage_month(data / "landing", source, month(i), key), "t")
        for i in range(1, COPY_AFTER + 1):
            compute(conn, month(i))
    purged = root / "purged"
    shutil.copytree(data, purged)
    with warehouse.connect(path) as conn:
        for i in range(COPY_AFTER + 1, MONTHS + 1):
            compute(conn, month(i))
    settings = Settings(data_dir=purged)
    runs = []
    for i in range(COPY_AFTER + 1, MONTHS + 2):  # the run of month i, after month i-1's job
        runs.append(run_retention(settings, month(i).replace(day=15)))
        if i <= MONTHS:
            with warehouse.connect(settings.warehouse_path) as conn:
                compute(conn, month(i))
    return {"kept": data, "purged": purged, "runs": runs}


def test_later_months_figures_do_not_change_when_old_months_are_purged(thirty):
    with (
        warehouse.read_only(Settings(data_dir=thirty["kept"]).warehouse_path) as kept,
        warehouse.read_only(Settings(data_dir=thirty["purged"]).warehouse_path) as purged,
    ):
        for i in range(1, MONTHS + 1):  # old months' figures are kept, later ones unchanged
            assert figures(purged, month(i)) == figures(kept, month(i)), month(i)
        assert figures(kept, month(MONTHS))
    runs = thirty["runs"]
    assert sum(r.persons for r in runs) > 0  # the clock did delete persons
    assert all(r.rows.get("marts.indicators") is None for r in runs)


def test_retention_keeps_exactly_the_persons_named_in_the_last_24_months(thirty):
    kept_from = months_before(month(MONTHS + 1), 24)  # the last run: 24 months up to month 30
    with warehouse.read_only(Settings(data_dir=thirty["kept"]).warehouse_path) as conn:
        everyone = last_links(conn)
        staged_kept = sum(
            conn.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
            for t in warehouse.existing_tables(conn, "staging")
        )
    allowed = {p for p, last in everyone.items() if last >= kept_from}
    assert 0 < len(allowed) < len(everyone)
    with warehouse.read_only(Settings(data_dir=thirty["purged"]).warehouse_path) as conn:
        left = last_links(conn)
        assert min(left.values()) >= kept_from
        # as many persons as the rule allows: none deleted early (ids may differ after merges)
        assert len(left) == len(allowed)
        staged = sum(
            conn.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
            for t in warehouse.existing_tables(conn, "staging")
        )
        deleted = sum(r.rows.get(t, 0) for r in thirty["runs"] for t in r.rows)
        assert deleted > 0 and staged < staged_kept
        for t in warehouse.existing_tables(conn, "quarantine"):
            assert (
                conn.execute(f"SELECT count(*) FROM {t} WHERE month < ?", [kept_from]).fetchall()[
                    0
                ][0]
                == 0
            )
        # households with no member left are gone from core; none is left without provenance
        assert (
            conn.execute(
                "SELECT count(*) FROM core.household_months WHERE household_id NOT IN "
                "(SELECT household_id FROM identity.households)"
            ).fetchall()[0][0]
            == 0
        )
        events = [e for e in audit.events(conn) if e.kind == "retention"]
    assert len(events) == len(thirty["runs"])
    assert events[-1].counts["kept_from"] == f"{kept_from:%Y-%m}"
    assert events[-1].counts["persons"] == thirty["runs"][-1].persons


def test_ids_are_never_given_twice_so_both_worlds_give_the_same_ids(thirty):
    query = "SELECT record_key, person_id FROM identity.person_links WHERE month >= ? ORDER BY 1"
    with (
        warehouse.read_only(Settings(data_dir=thirty["kept"]).warehouse_path) as kept,
        warehouse.read_only(Settings(data_dir=thirty["purged"]).warehouse_path) as purged,
    ):
        later = month(COPY_AFTER + 1)
        assert purged.execute(query, [later]).fetchall() == kept.execute(query, [later]).fetchall()
        given = dict(purged.execute("SELECT * FROM identity.id_sequences").fetchall())
        (highest,) = kept.execute("SELECT max(person_id) FROM identity.person_links").fetchall()[0]
    assert given["person"] <= highest and given["household"] > 0


def test_the_last_month_recomputed_after_the_purge_gives_the_same_figures(thirty):
    path = Settings(data_dir=thirty["purged"]).warehouse_path
    with warehouse.connect(path) as conn:
        before = figures(conn, month(MONTHS))
        compute(conn, month(MONTHS))  # a re-delivery of the last month, after the last purge
        assert figures(conn, month(MONTHS)) == before


def test_every_personal_table_has_a_retention_rule():
    for table in warehouse.personal_tables():
        assert rule_for(table.name)
    assert "marts.indicators" not in RULES


def test_landing_files_go_after_the_delay_and_a_month_without_files_keeps_its_rows(ran, tmp_path):
    data = copy(ran, tmp_path)
    settings = Settings(data_dir=data, retention_months=60)  # persons kept: files only
    files = sorted(p for p in settings.landing_dir.rglob("*") if p.is_file())
    with warehouse.read_only(settings.warehouse_path) as conn:
        staged = {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
            for t in warehouse.existing_tables(conn, "staging")
        }
        march = figures(conn, date(2025, 3, 1))
    assert run_retention(settings, date.today()).files == []  # ingested today: kept 30 days
    # a partner's new file for February waits for staging: its source-month's files stay
    waiting = settings.landing_dir / "2025-02" / "sne" / "renvoi.csv"
    waiting.write_bytes(next(waiting.parent.glob("*.csv")).read_bytes() + b"\n")
    done = run_retention(settings, date.today() + timedelta(days=31))
    assert {p for p in files if not p.exists()} == set(done.files)
    assert set(done.files) == {p for p in files if p.parent != waiting.parent}
    assert all(p.parent.is_dir() for p in files)  # month folders stay: still partitions
    waiting.unlink()
    # the landing sensor finds only the files kept, all ingested already: it requests no run
    found = scan_landing(settings.landing_dir, {"2025-01", "2025-02", "2025-03"})
    assert set(found) == {
        p.relative_to(settings.landing_dir).as_posix() for p in files if p.exists()
    }
    with warehouse.read_only(settings.warehouse_path) as conn:
        ingested = set(conn.execute("SELECT file_name, sha256 FROM lineage.files").fetchall())
    assert requests_for(found, ingested, ["2025-01", "2025-02", "2025-03"]) == []
    # the month run again (as `synchro run --months 2025-03` or a backfill would) finds no
    # file and leaves its staged rows, and so its figures, as they were
    assert run(data, [date(2025, 3, 1)]) == 0
    with warehouse.read_only(settings.warehouse_path) as conn:
        assert {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
            for t in warehouse.existing_tables(conn, "staging")
        } == staged
        assert figures(conn, date(2025, 3, 1)) == march
        assert [e.counts["landing_files"] for e in audit.events(conn) if e.kind == "retention"] == [
            0,
            len(done.files),
        ]
    assert os.stat(settings.warehouse_path).st_mode & 0o777 == 0o600


def test_the_analysts_snapshot_loses_what_the_warehouse_loses(ran, tmp_path):
    data = copy(ran, tmp_path)
    settings = Settings(data_dir=data)
    kept = [name for name in SNAPSHOT_TABLES if name.startswith("core.")]

    def rows(path: Path) -> dict[str, int]:
        with duckdb.connect(str(path), read_only=True) as conn:
            return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in kept}

    before = rows(settings.snapshot_path)
    # in March 2027 the 24 months kept start in 2025-03: January's and February's last
    # contacts go, March's stay
    done = run_retention(settings, date(2027, 3, 15))
    assert done.persons > 0
    after = rows(settings.snapshot_path)
    assert after == rows(settings.warehouse_path)  # the analysts' copy follows at once
    assert all(after[t] < before[t] for t in kept), (before, after)


def test_the_retention_job_runs_in_dagster_and_reports_counts_only(ran, tmp_path):
    data = copy(ran, tmp_path)
    settings = Settings(data_dir=data)
    result = (
        build_definitions(settings)
        .resolve_job_def("retention_job")
        .execute_in_process(instance=dg.DagsterInstance.ephemeral())
    )
    assert result.success
    (output,) = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = output.event_specific_data.metadata
    assert metadata["persons"].value == 0  # three months of 2025: everyone named since
    assert metadata["kept_from"].value == f"{months_before(date.today().replace(day=1), 24):%Y-%m}"
    assert all(isinstance(v.value, int | str) for v in metadata.values())
    with warehouse.read_only(settings.warehouse_path) as conn:
        assert [e.kind for e in audit.events(conn)].count("retention") == 1
