"""The Dagster graph, its automation, sensors and launched runs."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pytest

from synchro_dagster.defs import build_definitions
from synchro_dagster.defs.landing import AFTER_STAGING, requests_for
from synchro_dagster.settings import Settings
from synchro_dagster.sources import all_sources

SNAPSHOT = Path(__file__).with_name("graph_snapshot.json")
SENSORS = (
    "landing_sensor",
    "publish_after_monthly_run",
    "partner_feedback_after_monthly_run",
    "partner_feedback_after_failed_monthly_run",
    "dead_runs_sensor",
)


@pytest.fixture
def defs(tmp_path: Path) -> dg.Definitions:
    return build_definitions(Settings(data_dir=tmp_path, first_month="2025-01"))


def test_graph_snapshot(defs):
    """An accidental change of keys, job selection or triggers shows here in review."""
    graph = defs.resolve_asset_graph()
    keys = sorted(k.to_user_string() for k in graph.get_all_asset_keys())
    ids = sorted(all_sources())
    identity = ["identity/households", "identity/person_links"]
    observation = ["core/household_months", "core/household_events", "core/provenance"]
    marts = [
        "marts/indicators",
        "marts/revised_indicators",
        "marts/hidden_population",
        "marts/estimates",
    ]
    downstream = [*identity, *observation, *marts]
    assert keys == sorted(
        [f"landing/{s}" for s in ids]
        + [f"staging/{s}" for s in ids]
        + downstream
        + [
            "publish/analytics_snapshot",
            "publish/monthly_report",
            "publish/public_indicators",
            "publish/partner_feedback",
        ]
    )
    checks = sorted(f"{c.asset_key.to_user_string()}:{c.name}" for c in graph.asset_check_keys)
    assert checks == sorted(
        [
            f"staging/{s}:{c}"
            for s in ids
            for c in ("schema_valid", "rejection_rate", "column_drift", "volume")
        ]
        + [
            "identity/person_links:cluster_size",
            "identity/person_links:id_churn",
            "identity/person_links:model_estimate",
        ]
        + [
            "core/household_months:one_row_per_household_month",
            "core/household_months:traced_to_records",
            "marts/indicators:stock_balance",
            "marts/indicators:parts_sum_to_totals",
            "marts/revised_indicators:revised_balance",
            "marts/hidden_population:estimate_stable",  # WARN: an estimate may be unstable
        ]
    )
    # the DOMAIN's rules are blocking: a month that breaks one is not published
    blocking = {c.name for c in graph.asset_check_keys if graph.get_check_spec(c).blocking}
    assert blocking == {
        "one_row_per_household_month",
        "traced_to_records",
        "stock_balance",
        "parts_sum_to_totals",
        "revised_balance",
    }
    job = defs.resolve_job_def("monthly_job")
    assert sorted(k.to_user_string() for k in job.asset_layer.executable_asset_keys) == sorted(
        [f"staging/{s}" for s in ids] + downstream
    )
    publish = defs.resolve_job_def("publish_job")
    assert sorted(k.to_user_string() for k in publish.asset_layer.executable_asset_keys) == [
        "publish/analytics_snapshot",
        "publish/monthly_report",
        "publish/public_indicators",
    ]
    feedback = defs.resolve_job_def("feedback_job")
    assert [k.to_user_string() for k in feedback.asset_layer.executable_asset_keys] == [
        "publish/partner_feedback"
    ]
    schedule = defs.resolve_schedule_def("monthly_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 6 10 * *", "Europe/Paris")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    for name in SENSORS:
        assert defs.resolve_sensor_def(name).default_status == dg.DefaultSensorStatus.RUNNING
    retention = defs.resolve_schedule_def("retention_schedule")  # after the monthly job
    assert (retention.cron_schedule, retention.job_name) == ("0 6 15 * *", "retention_job")
    assert retention.default_status == dg.DefaultScheduleStatus.RUNNING


def graph_snapshot(defs: dg.Definitions) -> dict:
    """Everything about the graph a reviewer should see change: assets (deps, group, owners,
    kinds, table, partitioned, code version present), checks, jobs, schedules, sensors."""
    graph = defs.resolve_asset_graph()
    assets = {
        spec.key.to_user_string(): {
            "deps": sorted(d.asset_key.to_user_string() for d in spec.deps),
            "group": spec.group_name,
            "owners": sorted(spec.owners),
            "kinds": sorted(spec.kinds),
            "table": spec.metadata.get("dagster/table_name"),
            "partitioned": spec.partitions_def is not None,
            "code_version": bool(spec.code_version),
        }
        for spec in defs.resolve_all_asset_specs()
    }
    checks = {
        f"{key.asset_key.to_user_string()}:{key.name}": {
            "blocking": graph.get_check_spec(key).blocking,
            "partitioned": graph.get_check_spec(key).partitions_def is not None,
        }
        for key in graph.asset_check_keys
    }
    jobs = {
        name: sorted(
            k.to_user_string() for k in defs.resolve_job_def(name).asset_layer.executable_asset_keys
        )
        for name in ("monthly_job", "publish_job", "feedback_job")
    }
    jobs["retention_job"] = [n.name for n in defs.resolve_job_def("retention_job").nodes]
    schedules = [defs.resolve_schedule_def(n) for n in ("monthly_schedule", "retention_schedule")]
    return {
        "assets": dict(sorted(assets.items())),
        "checks": dict(sorted(checks.items())),
        "jobs": jobs,
        "schedules": {
            schedule.name: {
                "cron": schedule.cron_schedule,
                "timezone": schedule.execution_timezone,
                "job": schedule.job_name,
                "status": schedule.default_status.value,
            }
            for schedule in schedules
        },
        "sensors": {name: defs.resolve_sensor_def(name).default_status.value for name in SENSORS},
    }


def test_graph_matches_its_reviewed_snapshot(defs):
    """Set SYNCHRO_UPDATE_SNAPSHOT=1 to rewrite the snapshot after an intended change, and
    review its diff."""
    current = json.dumps(graph_snapshot(defs), indent=1, sort_keys=True) + "\n"
    if os.environ.get("SYNCHRO_UPDATE_SNAPSHOT"):
        SNAPSHOT.write_text(current, encoding="utf-8")
    assert current == SNAPSHOT.read_text(encoding="utf-8"), "graph changed: see the docstring"


def _territory(name: str, data: Path, monkeypatch) -> dg.Definitions:
    """A territory's code location, as its code server loads it (SYNCHRO_TERRITORY set)."""
    monkeypatch.setenv("SYNCHRO_TERRITORY", name)
    monkeypatch.setenv("SYNCHRO_FIRST_MONTH", "2025-01")
    return build_definitions(Settings.from_env(data))


def _under(territory: str, snapshot: dict) -> dict:
    """`snapshot` with every asset key, dep, check and job's asset under `territory/`."""

    def key(name: str) -> str:
        return f"{territory}/{name}"

    return {
        **snapshot,
        "assets": {
            key(k): {**a, "deps": [key(d) for d in a["deps"]]}
            for k, a in snapshot["assets"].items()
        },
        "checks": {key(k): c for k, c in snapshot["checks"].items()},
        "jobs": {
            n: a if n == "retention_job" else [key(k) for k in a]
            for n, a in snapshot["jobs"].items()
        },
    }


def test_a_territory_has_the_same_graph_under_its_own_keys(defs, tmp_path, monkeypatch):
    nord = _territory("nord", tmp_path, monkeypatch)
    graph = nord.resolve_asset_graph()
    assert {k.path[0] for k in graph.get_all_asset_keys()} == {"nord"}
    assert {k.asset_key.path[0] for k in graph.asset_check_keys} == {"nord"}
    assert graph_snapshot(nord) == _under("nord", graph_snapshot(defs))  # deps, checks, jobs
    sud = _territory("sud", tmp_path, monkeypatch).resolve_asset_graph()
    assert not graph.get_all_asset_keys() & sud.get_all_asset_keys()
    assert not graph.asset_check_keys & sud.asset_check_keys


def test_what_a_territory_names_at_run_time_is_its_own_assets(tmp_path, monkeypatch):
    from synchro_dagster.defs.common import column_lineage

    nord = _territory("nord", tmp_path, monkeypatch)
    keys = nord.resolve_asset_graph().get_all_asset_keys()
    for table in ("core.household_months", "core.provenance", "marts.indicators"):
        deps = column_lineage(table, "nord").deps_by_column.values()
        assert {d.asset_key for column in deps for d in column} <= keys
    folder = tmp_path / "landing" / "2025-03" / "sne"
    folder.mkdir(parents=True)
    (folder / "sne_demandes_21_2025-03.csv").write_text("NUM_UNIQUE;NOM\n1;A\n")
    warehouse = tmp_path / "warehouse" / "synchro.duckdb"
    warehouse.parent.mkdir()
    with duckdb.connect(str(warehouse)) as conn:  # February computed: March's run, then its own
        conn.execute("CREATE SCHEMA marts; CREATE TABLE marts.indicators (month DATE)")
        conn.execute("INSERT INTO marts.indicators VALUES ('2025-02-01'), ('2025-04-01')")
    settings = nord.resources["synchro"]
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(
            instance=instance, definitions=nord, resources={"synchro": settings}
        )
        tick = nord.resolve_sensor_def("landing_sensor")(context)
        (event,) = tick.asset_events
        assert event.asset_key == dg.AssetKey(["nord", "landing", "sne"])
        assert [r.partition_key for r in tick.run_requests] == ["2025-03", "2025-04"]
        monthly = nord.resolve_job_def("monthly_job").asset_layer.executable_asset_keys
        assert all(set(r.asset_selection) <= monthly for r in tick.run_requests)
        # a run that computed nord's indicators is published; the publication job is nord's
        run = instance.create_run_for_job(
            nord.resolve_job_def("monthly_job"),
            asset_selection=frozenset(tick.run_requests[1].asset_selection),
            status=dg.DagsterRunStatus.SUCCESS,
        )
        sensor = nord.resolve_sensor_def("publish_after_monthly_run")
        context = dg.build_run_status_sensor_context(
            sensor_name=sensor.name,
            dagster_instance=instance,
            dagster_run=run,
            dagster_event=dg.DagsterEvent(
                dg.DagsterEventType.RUN_SUCCESS.value, job_name=run.job_name
            ),
        )
        assert sensor(context).run_key == f"publish-after-{run.run_id}"


def test_code_versions_follow_the_code_that_computes_each_asset(defs, tmp_path):
    from synchro_dagster.defs.common import fingerprint, module_files

    versions = {s.key.to_user_string(): s.code_version for s in defs.resolve_all_asset_specs()}
    staging = {versions[f"staging/{s}"] for s in all_sources()}
    assert len(staging) == len(all_sources())  # each source's own module is in its version
    assert versions["identity/person_links"] == versions["identity/households"]
    assert versions["core/household_months"] != versions["marts/indicators"]
    names = {p.name for p in module_files("synchro_dagster.identity.persons")}
    assert {"model.json", "linkage.py", "warehouse.py"} <= names
    names = {p.name for p in module_files("synchro_dagster.observation.build")}
    assert {"household_months.sql", "evidence.sql", "ids.py"} <= names and "model.json" not in names
    files = module_files("synchro_dagster.indicators.build")
    copy = [tmp_path / "synchro_dagster" / p.name for p in files]
    for source, target in zip(files, copy, strict=True):
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(source.read_bytes())
    root = tmp_path / "synchro_dagster"
    before = fingerprint(tuple(copy), root)
    sql = root / "indicators.sql"
    sql.write_text(sql.read_text() + "\n-- one comment more\n")
    assert fingerprint(tuple(copy), root) != before


def test_the_workspace_loads_the_code_location_runs_are_launched_in():
    import yaml

    from synchro_dagster.defs.launch import LOCATION, MODULE

    workspace = yaml.safe_load((Path(__file__).parents[2] / "workspace.yaml").read_text())
    target = workspace["load_from"][0]["python_module"]
    assert target["module_name"] == MODULE
    assert target.get("location_name", MODULE) == LOCATION


def test_every_asset_says_what_it_is(defs):
    for spec in defs.resolve_all_asset_specs():
        stages = ("landing", "staging", "identity", "core", "marts", "publish")
        assert spec.description and spec.group_name in stages, spec.key
        assert spec.owners and spec.kinds, spec.key
        if spec.group_name != "landing":
            assert spec.code_version and "Grain:" in spec.description


def test_schedule_runs_the_previous_month(defs):
    schedule = defs.resolve_schedule_def("monthly_schedule")
    moment = datetime(2026, 1, 10, 6, 0, tzinfo=ZoneInfo("Europe/Paris"))
    with (
        dg.instance_for_test() as instance,
        dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=moment,
            repository_def=defs.get_repository_def(),
        ) as context,
    ):
        request = schedule.evaluate_tick(context).run_requests[0]
    assert request.partition_key == "2025-12"


def _sensor_tick(defs, data: Path, cursor: str | None) -> dg.SensorResult:
    sensor = defs.resolve_sensor_def("landing_sensor")
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(
            instance=instance,
            cursor=cursor,
            definitions=defs,
            resources={"synchro": Settings(data_dir=data, first_month="2025-01")},
        )
        return sensor(context)


def test_sensor_requests_one_run_per_new_or_changed_file(defs, tmp_path):
    month = tmp_path / "landing" / "2025-03"
    (month / "sne").mkdir(parents=True)
    (month / "syplo").mkdir(parents=True)
    (month / "sne" / "sne_demandes_21_2025-03.csv").write_text("NUM_UNIQUE;NOM\n1;A\n")
    (month / "syplo" / "syplo_export_2025-03.csv").write_text("numero_syplo;nom\n1;A\n")
    (month / "syplo" / "notes.docx").write_text("not a delivery")  # not a syplo pattern

    first = _sensor_tick(defs, tmp_path, None)
    requests = {
        (r.partition_key, tuple(k.to_user_string() for k in r.asset_selection))
        for r in first.run_requests
    }
    after = tuple(k.to_user_string() for k in AFTER_STAGING)
    assert requests == {
        ("2025-03", ("staging/sne", *after)),
        ("2025-03", ("staging/syplo", *after)),
    }
    assert all("/" in r.run_key and len(r.run_key.split("/")[-1]) == 64 for r in first.run_requests)
    assert {e.asset_key.to_user_string() for e in first.asset_events} == {
        "landing/sne",
        "landing/syplo",
    }

    again = _sensor_tick(defs, tmp_path, first.cursor)
    assert not again.run_requests  # nothing new: no run

    (month / "sne" / "sne_demandes_21_2025-03.csv").write_text("NUM_UNIQUE;NOM\n1;B\n")
    changed = _sensor_tick(defs, tmp_path, again.cursor)
    assert [r.asset_selection[0].to_user_string() for r in changed.run_requests] == ["staging/sne"]
    assert changed.run_requests[0].run_key != first.run_requests[0].run_key
    assert set(json.loads(changed.cursor)) == {
        "2025-03/sne/sne_demandes_21_2025-03.csv",
        "2025-03/syplo/syplo_export_2025-03.csv",
    }


def test_a_past_month_redelivered_recomputes_every_later_month_in_order():
    def fresh(*files):
        return {
            f"{m}/{s}/{s}.csv": {"source": s, "month": m, "sha256": s[0] * 64, "size": 1}
            for m, s in files
        }

    computed = ["2025-01", "2025-02", "2025-03", "2025-04", "2025-05"]
    runs = requests_for(fresh(("2025-03", "sne")), set(), computed)
    assert [(r.partition_key, r.asset_selection[0].to_user_string()) for r in runs] == [
        ("2025-03", "staging/sne"),
        ("2025-04", "identity/person_links"),
        ("2025-05", "identity/person_links"),
    ]
    assert runs[1].asset_selection == AFTER_STAGING  # no re-staging of untouched months
    assert len({r.run_key for r in runs}) == 3

    # two re-deliveries: each later month still recomputed once, after its own files
    runs = requests_for(fresh(("2025-04", "dalo"), ("2025-02", "sne")), set(), computed)
    assert [(r.partition_key, r.asset_selection[0].to_user_string()) for r in runs] == [
        ("2025-02", "staging/sne"),
        ("2025-03", "identity/person_links"),
        ("2025-04", "staging/dalo"),
        ("2025-05", "identity/person_links"),
    ]
    # a file already staged (by `synchro run`) asks for nothing
    assert (
        requests_for(fresh(("2025-03", "sne")), {("2025-03/sne/sne.csv", "s" * 64)}, computed) == []
    )


def test_sensor_skips_files_already_staged_but_records_their_landing(defs, tmp_path):
    folder = tmp_path / "landing" / "2025-04" / "sne"
    folder.mkdir(parents=True)
    path = folder / "sne_demandes_21_2025-04.csv"
    path.write_text("NUM_UNIQUE;NOM\n1;A\n")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    warehouse = tmp_path / "warehouse" / "synchro.duckdb"
    warehouse.parent.mkdir()
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("CREATE SCHEMA lineage")
        conn.execute("CREATE TABLE lineage.files (file_name VARCHAR, sha256 VARCHAR)")
        conn.execute(
            "INSERT INTO lineage.files VALUES (?, ?)",
            ["2025-04/sne/sne_demandes_21_2025-04.csv", sha],
        )
    tick = _sensor_tick(defs, tmp_path, None)
    assert not tick.run_requests
    assert [e.asset_key.to_user_string() for e in tick.asset_events] == ["landing/sne"]


def test_an_unexpected_error_never_reaches_dagster_with_its_text(tmp_path, monkeypatch):
    from synchro_dagster.defs import staging

    folder = tmp_path / "landing" / "2025-03" / "sne"
    folder.mkdir(parents=True)
    (folder / "sne_demandes_21_2025-03.csv").write_text("NUM_UNIQUE;NOM\n1;A\n")

    def boom(*_args, **_kwargs):
        raise ValueError("could not parse 'DUPONT Marie 12/05/1980'")

    monkeypatch.setattr(staging, "ingest_source_month", boom)
    monkeypatch.setenv("SYNCHRO_PSEUDONYMISATION_KEY", "k" * 40)
    settings = Settings(data_dir=tmp_path, first_month="2025-01")
    defs = build_definitions(settings)
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("monthly_job").execute_in_process(
            partition_key="2025-03",
            instance=instance,
            raise_on_error=False,
            asset_selection=[dg.AssetKey(["staging", "sne"])],
        )
        failure = next(e for e in result.all_events if e.is_step_failure)
        stored = " ".join(
            str(r.event_log_entry) for r in instance.get_records_for_run(result.run_id).records
        )
    error = failure.step_failure_data.error
    assert "ValueError" in error.message and "message withheld" in error.message
    assert "DUPONT" not in stored and "12/05/1980" not in stored


def test_sensor_reads_a_file_again_only_when_it_changed(defs, tmp_path, monkeypatch):
    from synchro_dagster.defs import landing

    folder = tmp_path / "landing" / "2025-03" / "sne"
    folder.mkdir(parents=True)
    path = folder / "sne_demandes_21_2025-03.csv"
    path.write_text("NUM_UNIQUE;NOM\n1;A\n")
    hashed: list[str] = []
    real = landing.sha256_of
    monkeypatch.setattr(landing, "sha256_of", lambda p: hashed.append(p.name) or real(p))
    first = _sensor_tick(defs, tmp_path, None)
    second = _sensor_tick(defs, tmp_path, first.cursor)
    assert hashed == [path.name] and not second.run_requests
    path.write_text("NUM_UNIQUE;NOM\n1;A\n2;B\n")
    third = _sensor_tick(defs, tmp_path, second.cursor)
    assert hashed == [path.name, path.name] and len(third.run_requests) == 1
