"""The instance's event log (synchro_dagster/eventlog.py): Dagster's SQLite event log, its
engines kept for the process, on the files `storage: sqlite` used."""

from __future__ import annotations

import dagster as dg

from synchro_dagster import eventlog
from synchro_dagster.cli import prepare_dagster_home

MONTHS = dg.MonthlyPartitionsDefinition(start_date="2025-01-01")


@dg.asset(partitions_def=MONTHS, check_specs=[dg.AssetCheckSpec("positive", asset="counted")])
def counted() -> dg.MaterializeResult:
    return dg.MaterializeResult(
        metadata={"rows": 3}, check_results=[dg.AssetCheckResult(passed=True)]
    )


def _materialise(instance: dg.DagsterInstance, month: str) -> dg.ExecuteInProcessResult:
    return dg.materialize([counted], instance=instance, partition_key=month)


def test_the_shipped_instance_reuses_its_engines_and_reads_as_dagster_wrote(tmp_path, monkeypatch):
    home = prepare_dagster_home(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    created = []
    real = eventlog.create_engine
    monkeypatch.setattr(
        eventlog, "create_engine", lambda *a, **k: created.append(a) or real(*a, **k)
    )
    instance = dg.DagsterInstance.get()
    assert isinstance(instance.event_log_storage, eventlog.EventLogStorage)
    runs = [_materialise(instance, month) for month in ("2025-01-01", "2025-02-01", "2025-01-01")]
    assert all(r.success for r in runs)
    # one engine per file: the index and each run's, whatever the number of events
    events = sum(len(instance.all_logs(r.run_id)) for r in runs)
    assert events > 3 * 10
    assert 0 < len(created) <= 1 + len(runs)
    assert (home / "history" / "runs" / f"{runs[0].run_id}.db").exists()

    # another process (the UI, the daemon) opening the files with Dagster's own storage
    monkeypatch.setattr(eventlog, "create_engine", real)
    (home / "dagster.yaml").write_text(
        "storage:\n  sqlite:\n    base_dir:\n      env: DAGSTER_HOME\n"
    )
    other = dg.DagsterInstance.get()
    assert type(other.event_log_storage) is not eventlog.EventLogStorage
    latest = other.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("counted"), asset_partitions=["2025-01-01"]),
        limit=5,
    ).records
    assert [m.run_id for m in latest] == [runs[2].run_id, runs[0].run_id]
    check = other.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("counted"), "positive")]
    )
    assert check[dg.AssetCheckKey(dg.AssetKey("counted"), "positive")].run_id == runs[2].run_id


def test_the_engines_kept_are_bounded(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(prepare_dagster_home(tmp_path)))
    monkeypatch.setattr(eventlog, "ENGINES", 3)
    instance = dg.DagsterInstance.get()
    runs = [_materialise(instance, f"2025-0{m}-01") for m in range(1, 5)]
    kept = {shard for _, shard in instance.event_log_storage._engines}
    assert len(kept) == 3
    assert runs[0].run_id not in kept  # the least recently used went first
    assert instance.all_logs(runs[0].run_id)  # and its events read as before
