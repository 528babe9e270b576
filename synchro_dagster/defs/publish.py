"""Publication: the public indicators and the analysts' snapshot, refreshed after every
successful monthly run."""

import dagster as dg

from synchro_dagster import warehouse
from synchro_dagster.defs.common import OWNERS, code_version, failing_without_text
from synchro_dagster.defs.core import HOUSEHOLD_EVENTS, HOUSEHOLD_MONTHS, PROVENANCE
from synchro_dagster.defs.marts import INDICATORS
from synchro_dagster.publish import public
from synchro_dagster.publish.disclosure import DisclosureError
from synchro_dagster.publish.snapshot import SNAPSHOT_TABLES, publish_snapshot
from synchro_dagster.settings import Settings

SNAPSHOT = dg.AssetKey(["publish", "analytics_snapshot"])
PUBLIC_INDICATORS = dg.AssetKey(["publish", "public_indicators"])


@dg.asset(
    key=PUBLIC_INDICATORS,
    deps=[INDICATORS],
    group_name="publish",
    kinds={"csv", "parquet", "excel"},
    owners=OWNERS,
    code_version=code_version("synchro_dagster.publish.public"),
    pool="duckdb",
    description=(
        "Grain: one row per month, indicator and dimension of marts.indicators, every month: "
        "figures anyone may be handed. A non-zero cell under SYNCHRO_MIN_CELL households "
        "(default 11) and durations on fewer households are secret (statut secret_primaire); "
        "cells that would let a reader recompute one are secret too (secret_secondaire). "
        "French labels. Files: data/published/public/indicators.csv (UTF-8, ';'), "
        ".parquet, .xlsx."
    ),
)
def public_indicators(
    context: dg.AssetExecutionContext, synchro: dg.ResourceParam[Settings]
) -> dg.MaterializeResult:
    target = synchro.public_dir
    with failing_without_text(
        "The public indicators", f"The previous files in {target} are unchanged."
    ):
        with warehouse.read_only(synchro.warehouse_path) as conn:
            cells = public.indicator_cells(conn)
        try:
            table = public.public_table(cells, synchro.min_cell, synchro.lookback_months)
        except DisclosureError as error:  # its text names rules, never a value
            raise dg.Failure(f"{error}. The previous files in {target} are unchanged.") from None
        public.write_public(table, target, synchro.min_cell)
    counts = public.status_counts(table)
    context.log.info(f"Public indicators written to {target}: {counts}")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(target)),
            "min_cell": synchro.min_cell,
            "cells": table.height,
            **{f"cells_{status}": n for status, n in counts.items()},
        }
    )


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
    selection=[PUBLIC_INDICATORS, SNAPSHOT],
    description="Refreshes the public indicators and the analysts' snapshot (after each "
    "successful monthly run).",
)


def publish_after_monthly(monthly: "dg.UnresolvedAssetJobDefinition") -> dg.SensorDefinition:
    @dg.run_status_sensor(
        name="publish_after_monthly_run",
        run_status=dg.DagsterRunStatus.SUCCESS,
        request_job=publish_job,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="After each successful run that computed indicators (the monthly job, a "
        "re-delivery's runs, a backfill from the UI), refreshes publish/public_indicators and "
        "publish/analytics_snapshot.",
    )
    def _publish(context: dg.RunStatusSensorContext):
        run = context.dagster_run
        selection = run.asset_selection  # None: the whole job
        computed = run.job_name == monthly.name if selection is None else INDICATORS in selection
        if not computed:
            return dg.SkipReason(f"run {run.run_id} computed no indicators")
        return dg.RunRequest(run_key=f"publish-after-{run.run_id}")

    return _publish
