"""In Dagster: a re-delivery whose rows are mostly unusable is refused before it is written.

The asset fails with the refusal's message, its `rejection_rate` check says why with figures,
the month's staging stays the previous delivery, and the refusal is kept for the partner."""

from __future__ import annotations

import dagster as dg
from pipelinekit import KEY, copy

from synchro_dagster import warehouse
from synchro_dagster.defs import build_definitions
from synchro_dagster.settings import Settings

STAGING_SNE = dg.AssetKey(["staging", "sne"])


def test_a_mostly_unusable_redelivery_keeps_the_month_and_fails_its_check(
    ran, tmp_path, monkeypatch
):
    data = copy(ran, tmp_path)
    sql = "SELECT count(*), min(file_sha256) FROM staging.sne WHERE month = DATE '2025-02-01'"
    with warehouse.read_only(data / "warehouse" / "synchro.duckdb") as conn:
        before = conn.execute(sql).fetchall()
    path = next((data / "landing" / "2025-02" / "sne").glob("*.csv"))
    lines = path.read_text(encoding="cp1252").splitlines()
    header = lines[0].split(";")
    names = {header.index("NOM"), header.index("PRENOM")}
    body = [
        ";".join("" if j in names else v for j, v in enumerate(line.split(";")))
        for line in lines[1:]
    ]
    path.write_text("\r\n".join([lines[0], *body]) + "\r\n", encoding="cp1252")

    monkeypatch.setenv("SYNCHRO_PSEUDONYMISATION_KEY", KEY)
    monkeypatch.setenv("SYNCHRO_FIRST_MONTH", "2025-01")
    defs = build_definitions(Settings.from_env(data))
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("monthly_job").execute_in_process(
            partition_key="2025-02",
            instance=instance,
            raise_on_error=False,
            asset_selection=[STAGING_SNE],
        )
        [check] = [
            r.event_log_entry.dagster_event.event_specific_data
            for r in instance.get_records_for_run(
                result.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
            ).records
        ]
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.user_failure_data.description
    assert message.startswith(path.name) and "[too_many_rejected_rows]" in message
    assert "column « NOM »" in message and "What to do" in message
    assert (check.asset_key, check.check_name, check.passed) == (
        STAGING_SNE,
        "rejection_rate",
        False,
    )
    assert check.partition == "2025-02"
    assert check.metadata["problem"].value == "too_many_rejected_rows"
    assert f"{len(body)} of {len(body)} rows (100%)" in check.metadata["detail"].value
    with warehouse.read_only(data / "warehouse" / "synchro.duckdb") as conn:
        assert conn.execute(sql).fetchall() == before  # the previous delivery, untouched
        assert conn.execute(
            "SELECT file_name, problem, column_title FROM lineage.refusals"
        ).fetchall() == [
            (
                path.relative_to(data / "landing").as_posix(),
                "too_many_rejected_rows:no_identity",
                "NOM",
            )
        ]
