"""Several territories on one Dagster instance stored in a real PostgreSQL and executed by
Celery workers (started here from Debian's `postgresql` and `redis-server`, as .ci/run installs
them): each territory's runs go to its own worker, its failures, sensors and dead runs are its
own; its data and key stay in its own data directory."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import dagster as dg
import faultkit
import pytest
from pipelinekit import KEY, MONTHS, copy
from test_runs import dead_pid, held_slots

from synchro_dagster.cli import main, run_months
from synchro_dagster.defs import build_definitions
from synchro_dagster.defs.launch import create_run, failures
from synchro_dagster.defs.runs import PID_TAG, location_label
from synchro_dagster.localservers import postgres, redis
from synchro_dagster.settings import Settings
from synchro_dagster.territories import Territory, executed_by, local_environment

NAMES = ("nord", "sud")


@pytest.fixture
def instance_home(tmp_path, monkeypatch):
    """The shared instance's folder as `synchro territories config` writes it, on a fresh
    PostgreSQL database and Redis; this process's environment points at them."""
    home = tmp_path / "instance"
    given = [a for n in NAMES for a in ("--territory", n, str(tmp_path / n), "127.0.0.1")]
    assert main(["territories", "config", "--out", str(home), *given]) == 0
    with postgres() as database, redis() as broker:
        for name, value in local_environment(home, database, broker).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("SYNCHRO_PSEUDONYMISATION_KEY", KEY)
        monkeypatch.setenv("SYNCHRO_FIRST_MONTH", "2025-01")
        yield home


def _workers(home: Path, territories: list[Territory], tmp_path: Path) -> list[subprocess.Popen]:
    """One Celery worker per territory, with its environment, as commands.txt starts them."""
    started = []
    for t in territories:
        with (tmp_path / f"{t.name}-worker.log").open("w") as log:
            started.append(
                subprocess.Popen(
                    t.worker(home),
                    env={**faultkit.environment(), **t.environment(home)},  # this tree first
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    return started


SUCCESS, FAILURE = dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE
MATERIALIZED, FAILED = dg.AssetPartitionStatus.MATERIALIZED, dg.AssetPartitionStatus.FAILED


def test_two_territories_run_on_their_workers_and_fail_apart_on_one_postgres_instance(
    ran, tmp_path, monkeypatch, instance_home
):
    nord, sud = (copy(ran, tmp_path / name) for name in NAMES)
    delivery = sud / "landing" / "2025-03" / "maraudes" / "maraudes_2025-03.xlsx"
    delivery.write_bytes(b"not a workbook")  # sud's street teams' March file, damaged
    territories = [Territory(n, d, "127.0.0.1", 0) for n, d in zip(NAMES, (nord, sud), strict=True)]
    workers = _workers(instance_home, territories, tmp_path)
    instance = dg.DagsterInstance.get()
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
    try:
        defs, runs = {}, {}
        for t in territories:  # each month launched as the UI and the daemon launch it
            monkeypatch.setenv("SYNCHRO_TERRITORY", t.name)
            defs[t.name] = build_definitions(Settings.from_env(t.data_dir))
            runs[t.name] = create_run(instance, defs[t.name], "monthly_job", "2025-03").run_id
            instance.launch_run(runs[t.name], workspace=None)
        deadline = time.monotonic() + 300
        while not all(instance.get_run_by_id(r).is_finished for r in runs.values()):
            assert time.monotonic() < deadline, [w.poll() for w in workers]
            time.sleep(0.5)
        by = {w.pid: name for w, name in zip(workers, NAMES, strict=True)}
        executed = {name: executed_by(instance, r, by) for name, r in runs.items()}  # alive
    finally:
        for worker in workers:
            os.killpg(worker.pid, signal.SIGTERM)
        for worker in workers:
            worker.wait(60)

    status = {name: instance.get_run_by_id(r).status for name, r in runs.items()}
    assert status == {"nord": SUCCESS, "sud": FAILURE}
    assert executed == {n: n for n in NAMES}  # each run by its territory's worker
    for name, run_id in runs.items():
        run = instance.get_run_by_id(run_id)
        assert run.tags["dagster-celery/queue"] == f"synchro-{name}"
        assert run.remote_job_origin.location_name == f"synchro-{name}"
        assert instance.get_runs(dg.RunsFilter(tags=location_label(f"synchro-{name}"))) == [run]
    (failed,) = failures(instance, runs["sud"])
    assert failed[0] == "staging__maraudes" and "maraudes_2025-03.xlsx" in failed[1]
    assert faultkit.results(nord) == faultkit.results(ran)  # the other territory's failure
    assert faultkit.results(sud) == faultkit.results(ran)  # and the refused file: nothing changed

    # what the UI's asset pages show: each territory's own assets, its months' status its own
    assert {k.path[0] for k in instance.get_asset_keys()} == set(NAMES)
    for name, source, expected in (
        ("nord", "maraudes", MATERIALIZED),
        ("sud", "maraudes", FAILED),  # the damaged file
        ("sud", "sne", MATERIALIZED),  # its other sources staged all the same
    ):
        key = dg.AssetKey([name, "staging", source])
        months = defs[name].resolve_assets_def(key).partitions_def
        assert instance.get_status_by_partition(key, ["2025-03"], months) == {"2025-03": expected}
    check = dg.AssetCheckKey(dg.AssetKey(["nord", "marts", "indicators"]), "stock_balance")
    (checked,) = instance.event_log_storage.get_asset_check_execution_history(check, limit=5)
    assert checked.run_id == runs["nord"] and checked.status.value == "SUCCEEDED"
    (months,) = instance.fetch_materializations(
        dg.AssetKey(["nord", "core", "household_months"]), limit=1
    ).records
    lineage = months.asset_materialization.metadata["dagster/column_lineage"].value
    read = {d.asset_key for deps in lineage.deps_by_column.values() for d in deps}
    assert read and read <= defs["nord"].resolve_asset_graph().get_all_asset_keys()

    # the schedule and the sensors of a territory, on the PostgreSQL instance
    mine = defs["nord"]
    with dg.build_schedule_context(
        instance=instance, repository_def=mine.get_repository_def()
    ) as c:
        assert mine.resolve_schedule_def("monthly_schedule").evaluate_tick(c).run_requests
    landing = mine.resolve_sensor_def("landing_sensor")
    resources = {"synchro": mine.resources["synchro"]}

    def tick(cursor: str | None) -> dg.SensorResult:
        context = dg.build_sensor_context(
            instance=instance, cursor=cursor, definitions=mine, resources=resources
        )
        return landing(context)

    first = tick(None)
    assert not first.run_requests  # every file already staged
    (nord / "landing" / "2025-03" / "maraudes" / "maraudes_2025-03.xlsx").write_bytes(b"new")
    (request,) = tick(first.cursor).run_requests
    assert request.partition_key == "2025-03" and request.tags["synchro/file"].endswith(".xlsx")

    # a run of sud whose process died, holding a pool slot: nord's sensor leaves it to sud's
    dead = instance.create_run_for_job(
        mine.resolve_job_def("monthly_job"),
        tags={PID_TAG: str(dead_pid()), **location_label("synchro-sud")},
    )
    storage = instance.event_log_storage  # PostgreSQL's, pools included
    storage.set_concurrency_slots("duckdb", 1)
    assert storage.claim_concurrency_slot("duckdb", dead.run_id, "identity").is_claimed
    sensor = mine.resolve_sensor_def("dead_runs_sensor")
    assert sensor(dg.build_sensor_context(instance=instance)).skip_message == "no run has died"
    theirs = defs["sud"].resolve_sensor_def("dead_runs_sensor")
    said = theirs(dg.build_sensor_context(instance=instance)).skip_message
    assert f"Run {dead.run_id} (monthly_job) was" in said and "1 pool slot(s) freed" in said
    assert not held_slots(instance)


DEPLOY = Path(__file__).parents[1] / "deploy"
EXAMPLE = ["--home", "/srv/synchro/instance",
           "--territory", "dijon", "/srv/synchro/dijon", "siao-dijon.example",
           "--territory", "cote-d-or", "/srv/synchro/cote-d-or", "siao-21.example"]  # fmt: skip


def test_deploy_holds_what_synchro_territories_config_writes(tmp_path, capsys):
    assert main(["territories", "config", "--out", str(tmp_path), *EXAMPLE]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in DEPLOY.iterdir())
    for path in tmp_path.iterdir():
        assert path.read_text() == (DEPLOY / path.name).read_text(), path.name
    assert "-q synchro-dijon" in capsys.readouterr().out
    assert main(["territories", "config", "--out", str(tmp_path), "--territory", "Dijon!",
                 "/srv/x", "h"]) == 1  # fmt: skip
    assert "is not a territory name" in capsys.readouterr().err


def test_a_territory_runs_only_on_the_shared_instance_it_names(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("SYNCHRO_TERRITORY", "nord")
    monkeypatch.setenv("SYNCHRO_PSEUDONYMISATION_KEY", KEY)
    (tmp_path / "landing" / "2025-01").mkdir(parents=True)
    assert run_months(tmp_path, [MONTHS[0]]) == 1
    assert "set DAGSTER_HOME" in capsys.readouterr().err
    assert not (tmp_path / "dagster_home").exists()
