"""Several territories on one Dagster instance stored in a real PostgreSQL (started here from
Debian's `postgresql`, as .ci/run installs it): each territory's runs, failures, sensors and
dead runs are its own; its data and key stay in its own data directory."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import faultkit
import pytest
from pipelinekit import KEY, MONTHS, copy
from test_runs import dead_pid, held_slots

from synchro_dagster.cli import main, run_months
from synchro_dagster.defs import build_definitions
from synchro_dagster.defs.launch import failures, launch
from synchro_dagster.defs.runs import PID_TAG, location_label
from synchro_dagster.localservers import postgres
from synchro_dagster.settings import Settings


@pytest.fixture
def instance_home(tmp_path, monkeypatch):
    """The shared instance's folder as `synchro territories config` writes it, on a fresh
    PostgreSQL database."""
    home = tmp_path / "instance"
    assert main(["territories", "config", "--out", str(home),
                 "--territory", "nord", str(tmp_path / "nord"), "127.0.0.1",
                 "--territory", "sud", str(tmp_path / "sud"), "127.0.0.1"]) == 0  # fmt: skip
    with postgres() as server:
        for name, value in server.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        monkeypatch.setenv("SYNCHRO_CELERY_BROKER", "redis://127.0.0.1:9/0")  # no run goes there
        monkeypatch.setenv("SYNCHRO_CELERY_BACKEND", "redis://127.0.0.1:9/1")
        monkeypatch.setenv("SYNCHRO_PSEUDONYMISATION_KEY", KEY)
        monkeypatch.setenv("SYNCHRO_FIRST_MONTH", "2025-01")
        yield home


def _territory(name: str, ran, tmp_path, monkeypatch):
    data = copy(ran, tmp_path / name)
    monkeypatch.setenv("SYNCHRO_TERRITORY", name)
    return data


SUCCESS = dg.DagsterRunStatus.SUCCESS


def test_two_territories_run_and_fail_apart_on_one_postgres_instance(
    ran, tmp_path, monkeypatch, instance_home, capsys
):
    nord = _territory("nord", ran, tmp_path, monkeypatch)
    nord_defs = build_definitions(Settings.from_env(nord))
    instance = dg.DagsterInstance.get()
    assert launch(instance, nord_defs, "monthly_job", "2025-03").is_success  # as the UI does
    sud = _territory("sud", ran, tmp_path, monkeypatch)
    delivery = sud / "landing" / "2025-03" / "maraudes" / "maraudes_2025-03.xlsx"
    delivery.write_bytes(b"not a workbook")  # the street teams' March file, damaged
    assert run_months(sud, [MONTHS[2]]) == 1
    assert "maraudes_2025-03.xlsx" in capsys.readouterr().err

    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"

    def runs(location: str) -> dict[str, dg.DagsterRun]:
        found = instance.get_runs(dg.RunsFilter(tags=location_label(location)))
        assert {r.remote_job_origin.location_name for r in found} == {location}
        return {r.job_name: r for r in found}

    mine, theirs = runs("synchro-nord"), runs("synchro-sud")
    assert {job: r.status for job, r in mine.items()} == {
        "monthly_job": dg.DagsterRunStatus.SUCCESS
    }
    assert theirs["monthly_job"].status == dg.DagsterRunStatus.FAILURE
    assert theirs["monthly_job"].tags["dagster/partition"] == "2025-03"
    (failed,) = failures(instance, theirs["monthly_job"].run_id)
    assert failed[0] == "staging__maraudes" and "maraudes_2025-03.xlsx" in failed[1]
    assert theirs["feedback_job"].is_success  # the partner is told what to fix
    assert "publish_job" not in theirs
    assert faultkit.results(nord) == faultkit.results(ran)  # the other territory's failure
    assert faultkit.results(sud) == faultkit.results(ran)  # and the refused file: nothing changed
    feedback = "published/feedback/maraudes/retour_maraudes_2025-03.xlsx"
    assert (sud / feedback).stat().st_mtime > (nord / feedback).stat().st_mtime  # sud's only

    # the schedule and the sensors of a territory, on the PostgreSQL instance
    defs = nord_defs
    with dg.build_schedule_context(
        instance=instance, repository_def=defs.get_repository_def()
    ) as c:
        assert defs.resolve_schedule_def("monthly_schedule").evaluate_tick(c).run_requests
    landing = defs.resolve_sensor_def("landing_sensor")
    resources = {"synchro": defs.resources["synchro"]}
    first = landing(
        dg.build_sensor_context(instance=instance, definitions=defs, resources=resources)
    )
    assert not first.run_requests  # every file already staged
    (nord / "landing" / "2025-03" / "maraudes" / "maraudes_2025-03.xlsx").write_bytes(b"new")
    again = landing(
        dg.build_sensor_context(
            instance=instance, cursor=first.cursor, definitions=defs, resources=resources
        )
    )
    (request,) = again.run_requests
    assert request.partition_key == "2025-03" and request.tags["synchro/file"].endswith(".xlsx")

    # a run of sud whose process died, holding a pool slot: nord's sensor leaves it to sud's
    dead = instance.create_run_for_job(
        defs.resolve_job_def("monthly_job"),
        tags={PID_TAG: str(dead_pid()), **location_label("synchro-sud")},
    )
    storage = instance.event_log_storage  # PostgreSQL's, pools included
    storage.set_concurrency_slots("duckdb", 1)
    assert storage.claim_concurrency_slot("duckdb", dead.run_id, "identity").is_claimed
    sensor = defs.resolve_sensor_def("dead_runs_sensor")
    assert sensor(dg.build_sensor_context(instance=instance)).skip_message == "no run has died"
    monkeypatch.setenv("SYNCHRO_TERRITORY", "sud")
    theirs_sensor = build_definitions(Settings.from_env(sud)).resolve_sensor_def("dead_runs_sensor")
    said = theirs_sensor(dg.build_sensor_context(instance=instance)).skip_message
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
