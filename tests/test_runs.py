"""Runs that die and runs at once: nothing stays held, months go in order, a run waits its turn.

The kill and concurrency tests run `synchro run` as real child processes on a copy of the
session's territory (`ran`) and compare the result with it; bench/kill_matrix.py kills a run at
every stage.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import duckdb
import faultkit
import pytest
from dagster._core.events import EngineEventData
from pipelinekit import KEY, MONTHS, copy

from synchro_dagster.cli import prepare_dagster_home, run_months
from synchro_dagster.defs.runs import (
    PID_TAG,
    dead_runs_sensor,
    exclusive,
    lock_path,
    process_alive,
    reap_dead_runs,
)
from synchro_dagster.months import first_incomplete, forget_all, record
from synchro_dagster.settings import Settings


def instance_of(data: Path, monkeypatch: pytest.MonkeyPatch) -> dg.DagsterInstance:
    """The instance of `data` (its dagster.yaml names its folder by DAGSTER_HOME)."""
    monkeypatch.setenv("DAGSTER_HOME", str(data / "dagster_home"))
    return dg.DagsterInstance.get()


def held_slots(instance: dg.DagsterInstance) -> list[str]:
    info = instance.event_log_storage.get_concurrency_info("duckdb")
    return [slot.run_id for slot in info.claimed_slots]


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_run_killed_at_every_stage_in_turn_wedges_nothing_and_two_reruns_converge(
    ran, tmp_path, monkeypatch
):
    """Killed at identity, then at core, at marts and at publish (staging: bench/kill_matrix.py,
    the session's files are already staged): each run gets past the one killed before it by
    itself; then two plain runs at once converge to the uninterrupted result."""
    data = copy(ran, tmp_path)
    faultkit.kill_at("identity", data, "2025-03", tmp_path)
    instance = instance_of(data, monkeypatch)
    (first,) = instance.get_runs()
    assert first.status == dg.DagsterRunStatus.STARTED and held_slots(instance) == [first.run_id]

    def started() -> list[dg.DagsterRun]:
        return [r for r in instance.get_runs() if r.status == dg.DagsterRunStatus.STARTED]

    for stage in ("core", "marts", "publish"):  # the next run frees the dead one's slot
        (dead,) = started()
        faultkit.kill_at(stage, data, "2025-03", tmp_path)
        assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE, stage
        failure = instance.get_records_for_run(
            dead.run_id, of_type=dg.DagsterEventType.RUN_FAILURE
        ).records[0]
        assert "is gone (killed or crashed)" in failure.event_log_entry.message, stage
        (killed,) = started()
        assert held_slots(instance) == [killed.run_id], stage

    # the same month twice at once, plainly: one waits for the other; both finish
    both = [faultkit.synchro("run", "--data-dir", str(data), "--months", "2025-03") for _ in "ab"]
    outputs = [child.communicate(timeout=300) for child in both]
    assert [child.returncode for child in both] == [0, 0], outputs
    said = "".join(err for _, err in outputs)
    assert f"Run {killed.run_id} (publish_job) was STARTED but its process" in said
    assert "1 pool slot(s) freed" in said and "is in use by synchro run --months" in said
    assert faultkit.results(data) == faultkit.results(ran)
    assert not held_slots(instance)
    assert all(r.is_finished for r in instance.get_runs())


def test_months_2_and_3_at_once_end_as_in_order_and_a_wrong_key_changes_nothing(
    ran, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))  # the runs here set it: restored after
    monkeypatch.setenv("SYNCHRO_FIRST_MONTH", "2025-01")
    data = copy(ran, tmp_path)
    faultkit.forget(data, "2025-02-01")  # February and March staged, never computed
    warehouse = data / "warehouse" / "synchro.duckdb"
    before = hashlib.sha256(warehouse.read_bytes()).hexdigest()

    monkeypatch.setenv("SYNCHRO_PSEUDONYMISATION_KEY", "another-key-" + "fedcba9876543210" * 3)
    assert run_months(data, MONTHS[1:]) == 1
    assert "another pseudonymisation key" in capsys.readouterr().err
    monkeypatch.setenv("SYNCHRO_PSEUDONYMISATION_KEY", KEY)
    assert run_months(data, [MONTHS[2]]) == 1  # March before February: refused, with what to do
    err = capsys.readouterr().err
    assert "2025-03 cannot be computed before 2025-02 is complete" in err
    command = re.search(r"synchro run --data-dir (\S+) --months (\S+)", err)
    assert command and Path(command[1]) == data.resolve() and command[2] == "2025-02:"
    assert hashlib.sha256(warehouse.read_bytes()).hexdigest() == before
    assert not instance_of(data, monkeypatch).get_runs()  # both refused before any run

    february = faultkit.synchro("run", "--data-dir", str(data), "--months", "2025-02")
    lock = data / "warehouse" / "run.lock"
    deadline = time.monotonic() + 120
    while "2025-02" not in (lock.read_text() if lock.exists() else ""):
        assert time.monotonic() < deadline and february.poll() is None, february.communicate()
        time.sleep(0.1)
    march = faultkit.synchro("run", "--data-dir", str(data), "--months", "2025-03")
    (out2, err2), (out3, err3) = february.communicate(timeout=300), march.communicate(timeout=300)
    assert (february.returncode, march.returncode) == (0, 0), out2 + err2 + out3 + err3
    assert "is in use by synchro run --months 2025-02:2025-02" in err3  # it waited its turn
    assert faultkit.results(data) == faultkit.results(ran)


def test_the_dead_runs_sensor_fails_the_runs_whose_process_is_gone_and_frees_their_slots(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))  # restored after the test
    prepare_dagster_home(tmp_path)
    instance = dg.DagsterInstance.get()
    storage = instance.event_log_storage
    runs = {}
    for name, tags in {
        "cli_dead": {PID_TAG: str(dead_pid())},
        "cli_alive": {PID_TAG: str(os.getpid())},
        "launched_dead": {},  # launched by the daemon: the pid is in an engine event
    }.items():
        run = instance.add_run(
            dg.DagsterRun(job_name="monthly_job", status=dg.DagsterRunStatus.STARTED, tags=tags)
        )
        runs[name] = run.run_id
    launched = instance.get_run_by_id(runs["launched_dead"])
    instance.report_engine_event(
        "Started process for run", launched, EngineEventData.in_process(dead_pid())
    )
    storage.initialize_concurrency_limit_to_default("duckdb")  # as a run's first step does
    storage.claim_concurrency_slot("duckdb", runs["cli_dead"], "identity")
    waiting = storage.claim_concurrency_slot("duckdb", runs["cli_alive"], "identity")
    assert not waiting.is_claimed  # limit 1: blocked by the dead run

    skip = dead_runs_sensor()(dg.build_sensor_context(instance=instance))

    status = {name: instance.get_run_by_id(i).status for name, i in runs.items()}
    assert status == {
        "cli_dead": dg.DagsterRunStatus.FAILURE,
        "cli_alive": dg.DagsterRunStatus.STARTED,
        "launched_dead": dg.DagsterRunStatus.FAILURE,
    }
    assert storage.claim_concurrency_slot("duckdb", runs["cli_alive"], "identity").is_claimed
    assert f"Run {runs['cli_dead']} (monthly_job) was STARTED" in skip.skip_message
    assert "1 pool slot(s) freed" in skip.skip_message
    assert reap_dead_runs(instance) == []  # nothing left to do


def test_a_process_that_started_after_the_run_was_seen_is_not_the_run():
    assert process_alive(os.getpid(), time.time())
    assert not process_alive(os.getpid(), time.time() - 10**6)  # its pid, reused later
    assert not process_alive(dead_pid(), time.time())


HOLD = """
import sys, time
from pathlib import Path
from synchro_dagster.defs.runs import exclusive
from synchro_dagster.settings import Settings
with exclusive(Settings(data_dir=Path(sys.argv[1]), first_month="2025-01"), "a test holder"):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_second_run_waits_a_bounded_time_and_the_lock_dies_with_its_holder(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))  # the run sets it: restored after
    settings = Settings(data_dir=tmp_path, first_month="2025-01", run_wait_seconds=1)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)],
        env=faultkit.environment(),
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert holder.stdout.readline() == "held\n"
    (tmp_path / "landing" / "2025-01").mkdir(parents=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SYNCHRO_PSEUDONYMISATION_KEY", KEY)
        mp.setenv("SYNCHRO_FIRST_MONTH", "2025-01")
        mp.setenv("SYNCHRO_RUN_WAIT_SECONDS", "1")
        t0 = time.perf_counter()
        assert run_months(tmp_path, [date(2025, 1, 1)]) == 1
        waited = time.perf_counter() - t0
    err = capsys.readouterr().err
    assert f"is in use by a test holder (process {holder.pid}" in err
    assert "after 1 s: nothing was run" in err and "SYNCHRO_RUN_WAIT_SECONDS" in err
    assert waited < 30 and not (tmp_path / "warehouse" / "synchro.duckdb").exists()

    os.killpg(holder.pid, signal.SIGKILL)
    holder.wait()
    with exclusive(settings, "the next run"), exclusive(settings, "its own runs"):  # re-entrant
        assert '"what": "the next run"' in lock_path(settings).read_text()


def _month(n: int) -> date:
    return date(2025, n, 1)


def test_a_month_is_complete_once_computed_after_its_files_and_the_month_before():
    with duckdb.connect() as conn:
        conn.execute("CREATE SCHEMA lineage")
        conn.execute("CREATE TABLE lineage.files (month DATE, loaded_at TIMESTAMP)")
        delivered = [_month(1), _month(2), _month(3)]
        assert first_incomplete(conn, _month(1), delivered) is None  # nothing before it
        assert first_incomplete(conn, _month(3), delivered) == _month(1)
        for n in (1, 2):
            conn.execute("INSERT INTO lineage.files VALUES (?, ?)", [_month(n), datetime.now()])
            record(conn, _month(n), "identity", "run")
            record(conn, _month(n), "marts", "run")
        assert first_incomplete(conn, _month(3), delivered) is None
        record(conn, _month(1), "marts", "again")  # January recomputed: February is stale
        assert first_incomplete(conn, _month(3), delivered) == _month(2)
        record(conn, _month(2), "identity", "run")
        assert first_incomplete(conn, _month(3), delivered) == _month(2)  # its marts still old
        record(conn, _month(2), "marts", "run")
        assert first_incomplete(conn, _month(3), delivered) is None
        conn.execute("INSERT INTO lineage.files VALUES (?, ?)", [_month(2), datetime.now()])
        assert first_incomplete(conn, _month(3), delivered) == _month(2)  # a file re-staged


def test_months_computed_before_the_record_existed_count_as_complete_until_a_reset():
    with duckdb.connect() as conn:
        conn.execute("CREATE SCHEMA marts")
        conn.execute("CREATE TABLE marts.indicators (month DATE, value DOUBLE)")
        conn.execute("INSERT INTO marts.indicators VALUES ('2025-01-01', 1), ('2025-02-01', 1)")
        assert first_incomplete(conn, _month(3), [_month(1), _month(2)]) is None
        record(conn, _month(3), "identity", "run")  # the table is created with the old months
        assert first_incomplete(conn, _month(4), []) == _month(3)  # its marts not computed yet
        record(conn, _month(3), "marts", "run")
        assert first_incomplete(conn, _month(4), []) is None
        forget_all(conn)  # `synchro identity reset`: every month from the first again
        assert first_incomplete(conn, _month(4), [_month(1)]) == _month(1)
