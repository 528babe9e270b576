"""The Dagster graph, its automation and the `synchro` command line."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pytest

from sources import all_sources
from synchro_dagster.cli import main
from synchro_dagster.defs import build_definitions
from synchro_dagster.defs.landing import AFTER_STAGING, requests_for
from synchro_dagster.defs.resources import SynchroConfig
from synchro_dagster.settings import Settings, create_demo_key, pseudonymisation_key


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
    downstream = [*identity, *observation, "marts/indicators"]
    assert keys == sorted(
        [f"landing/{s}" for s in ids]
        + [f"staging/{s}" for s in ids]
        + downstream
        + ["publish/analytics_snapshot"]
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
        ]
    )
    # the DOMAIN's rules are blocking: a month that breaks one is not published
    blocking = {c.name for c in graph.asset_check_keys if graph.get_check_spec(c).blocking}
    assert blocking == {
        "one_row_per_household_month",
        "traced_to_records",
        "stock_balance",
        "parts_sum_to_totals",
    }
    job = defs.resolve_job_def("monthly_job")
    assert sorted(k.to_user_string() for k in job.asset_layer.executable_asset_keys) == sorted(
        [f"staging/{s}" for s in ids] + downstream
    )
    publish = defs.resolve_job_def("publish_job")
    assert [k.to_user_string() for k in publish.asset_layer.executable_asset_keys] == [
        "publish/analytics_snapshot"
    ]
    schedule = defs.resolve_schedule_def("monthly_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 6 10 * *", "Europe/Paris")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    for name in ("landing_sensor", "publish_after_monthly_run"):
        assert defs.resolve_sensor_def(name).default_status == dg.DefaultSensorStatus.RUNNING


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
            resources={"synchro": SynchroConfig(data_dir=str(data))},
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


def test_missing_key_message_says_how_to_set_one(tmp_path, monkeypatch):
    monkeypatch.delenv("SYNCHRO_PSEUDONYMISATION_KEY", raising=False)
    with pytest.raises(Exception, match="SYNCHRO_PSEUDONYMISATION_KEY") as info:
        pseudonymisation_key(Settings(data_dir=tmp_path))
    assert "make demo" in str(info.value)


def test_demo_key_is_private_and_never_overwritten(tmp_path, monkeypatch):
    monkeypatch.delenv("SYNCHRO_PSEUDONYMISATION_KEY", raising=False)
    settings = Settings(data_dir=tmp_path)
    assert create_demo_key(settings.key_file)
    assert settings.key_file.stat().st_mode & 0o777 == 0o600
    key = pseudonymisation_key(settings)
    assert not create_demo_key(settings.key_file)
    assert pseudonymisation_key(settings) == key and len(key) >= 32


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["generate", "--out", "x", "--start", "2025-13"], "is not a month: write it YYYY-MM"),
        (["generate", "--out", "x", "--months", "0"], "must be 1 or more"),
        (["generate", "--out", "x", "--households", "many"], "is not a whole number"),
        (["run", "--months", "2025-05:2025-01"], "the range ends before it starts"),
        (["generate"], "--out"),
    ],
)
def test_cli_refuses_bad_arguments_clearly(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_sensor_skips_files_already_staged_but_records_their_landing(defs, tmp_path):
    folder = tmp_path / "landing" / "2025-04" / "sne"
    folder.mkdir(parents=True)
    path = folder / "sne_demandes_21_2025-04.csv"
    path.write_text("NUM_UNIQUE;NOM\n1;A\n")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    warehouse = tmp_path / "warehouse" / "synchro.duckdb"
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

    monkeypatch.setattr(staging, "stage_month", boom)
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


def test_the_indicators_page_is_generated_from_the_definitions():
    from synchro_dagster.indicators.definitions import INDICATORS, markdown

    page = Path(__file__).parent.parent / "docs" / "indicators.md"
    assert page.read_text(encoding="utf-8") == markdown(), "run `synchro docs` and commit"
    assert len({i.name for i in INDICATORS}) == len(INDICATORS)
    for i in INDICATORS:
        assert f"## `{i.name}`" in page.read_text(encoding="utf-8") and i.definition


@pytest.mark.parametrize(
    ("read", "quarantined", "passed"),
    [(6, 1, True), (6, 2, False), (100, 5, True), (100, 6, False), (0, 0, True)],
)
def test_rejection_rate_tolerates_one_broken_row_in_a_short_list(read, quarantined, passed):
    from datetime import date

    from synchro_dagster.defs.staging import _checks
    from synchro_dagster.ingest.store import LINEAGE_FILES_DDL

    month = date(2025, 8, 1)
    with duckdb.connect() as conn:
        conn.execute("CREATE SCHEMA lineage")
        conn.execute(LINEAGE_FILES_DDL)
        conn.execute("CREATE SCHEMA staging")
        conn.execute("CREATE TABLE staging.dalo AS SELECT ?::DATE AS month", [month])
        conn.execute(
            "INSERT INTO lineage.files (source, month, file_name, sha256, size_bytes, rows_read, "
            "rows_staged, rows_quarantined, rows_ignored, loaded_at) VALUES "
            "('dalo', ?, 'f.xlsx', 's', 1, ?, ?, ?, 0, now())",
            [month, read, read - quarantined, quarantined],
        )
        results = {r.check_name: r for r in _checks(conn, all_sources()["dalo"], month, 0.05)}
    assert results["rejection_rate"].passed is passed
