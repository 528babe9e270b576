"""Publication: the analysts' snapshot, refreshed after every successful monthly run."""

import dagster as dg

from synchro_dagster import warehouse
from synchro_dagster.defs.common import OWNERS, code_version, failing_without_text
from synchro_dagster.defs.core import HOUSEHOLD_EVENTS, HOUSEHOLD_MONTHS, PROVENANCE
from synchro_dagster.defs.marts import INDICATORS
from synchro_dagster.publish.snapshot import SNAPSHOT_TABLES, publish_snapshot
from synchro_dagster.settings import Settings

SNAPSHOT = dg.AssetKey(["publish", "analytics_snapshot"])


@dg.asset(
    key=SNAPSHOT,
    deps=[HOUSEHOLD_MONTHS, HOUSEHOLD_EVENTS, PROVENANCE, INDICATORS],
    group_name="publish",
    kinds={"duckdb"},
    owners=OWNERS,
    code_version=code_version("synchro_dagster.publish.snapshot"),
    pool="duckdb",
    description=(
        "Grain: one DuckDB file holding every month of "
        f"{', '.join(SNAPSHOT_TABLES)}: the analysts' read-only copy. No identity tokens, "
        "no staging rows. Written beside the live warehouse and swapped in at once: an "
        "analyst holding it open never blocks the pipeline. File: data/published/analytics.duckdb."
    ),
)
def analytics_snapshot(
    context: dg.AssetExecutionContext, synchro: dg.ResourceParam[Settings]
) -> dg.MaterializeResult:
    target = synchro.snapshot_path
    with (
        failing_without_text(
            "The analyst snapshot", f"The previous copy at {target} is unchanged."
        ),
        warehouse.connect(synchro.warehouse_path) as conn,
    ):
        counts = publish_snapshot(conn, target)
    context.log.info(f"Snapshot refreshed: {target}")
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(target)), **counts})


publish_job = dg.define_asset_job(
    "publish_job",
    selection=[SNAPSHOT],
    description="Refreshes the analysts' snapshot (after each successful monthly run).",
)


def publish_after_monthly(monthly: "dg.UnresolvedAssetJobDefinition") -> dg.SensorDefinition:
    @dg.run_status_sensor(
        name="publish_after_monthly_run",
        run_status=dg.DagsterRunStatus.SUCCESS,
        request_job=publish_job,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="After each successful run that computed indicators (the monthly job, a "
        "re-delivery's runs, a backfill from the UI), refreshes publish/analytics_snapshot.",
    )
    def _publish(context: dg.RunStatusSensorContext):
        run = context.dagster_run
        selection = run.asset_selection  # None: the whole job
        computed = run.job_name == monthly.name if selection is None else INDICATORS in selection
        if not computed:
            return dg.SkipReason(f"run {run.run_id} computed no indicators")
        return dg.RunRequest(run_key=f"publish-after-{run.run_id}")

    return _publish
