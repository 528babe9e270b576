"""Publication: the public indicators, the monthly steering report and the analysts' snapshot,
refreshed after every successful monthly run, and the partners' feedback, written after every
monthly run, failed ones included."""

from datetime import date

import dagster as dg
import polars as pl

from synchro_dagster import warehouse
from synchro_dagster.defs.common import (
    OWNERS,
    code_version,
    failing_without_text,
    territory_key,
)
from synchro_dagster.defs.core import HOUSEHOLD_EVENTS, HOUSEHOLD_MONTHS, PROVENANCE
from synchro_dagster.defs.marts import ESTIMATES, INDICATORS, REVISED
from synchro_dagster.defs.partitions import partition_month
from synchro_dagster.privacy import audit
from synchro_dagster.privacy.access import share_published
from synchro_dagster.publish import public
from synchro_dagster.publish.disclosure import DisclosureError
from synchro_dagster.publish.feedback import publish_feedback
from synchro_dagster.publish.report import write_reports
from synchro_dagster.publish.snapshot import (
    OLDEST_DUCKDB,
    SNAPSHOT_TABLES,
    STORAGE_VERSION,
    publish_snapshot,
)
from synchro_dagster.settings import Settings
from synchro_dagster.sources import all_sources

SNAPSHOT = dg.AssetKey(["publish", "analytics_snapshot"])
PUBLIC_INDICATORS = dg.AssetKey(["publish", "public_indicators"])
REPORT = dg.AssetKey(["publish", "monthly_report"])


@dg.asset(
    key=PUBLIC_INDICATORS,
    deps=[INDICATORS, ESTIMATES],
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
        ".parquet, .xlsx; and estimations.csv, .parquet: the estimate of the households no "
        "partner saw, rounded to the ten with its interval, and the linkage range of the "
        "published stock, inflow and outflow (docs/estimation.md), outside the count table."
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
            estimates = public.estimate_cells(conn)
        try:
            table = public.public_table(cells, synchro.min_cell, synchro.lookback_months)
        except DisclosureError as error:  # its text names rules, never a value
            raise dg.Failure(f"{error}. The previous files in {target} are unchanged.") from None
        estimated = public.public_estimates(estimates, table)
        public.write_public(table, target, synchro.min_cell, estimated)
    share_published(synchro)
    counts = public.status_counts(table)
    context.log.info(f"Public indicators written to {target}: {counts}")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(target)),
            "min_cell": synchro.min_cell,
            "cells": table.height,
            **{f"cells_{status}": n for status, n in counts.items()},
            "estimation_rows": estimated.height,
        }
    )


FEEDBACK = dg.AssetKey(["publish", "partner_feedback"])


@dg.asset(
    key=SNAPSHOT,
    deps=[HOUSEHOLD_MONTHS, HOUSEHOLD_EVENTS, PROVENANCE, INDICATORS, REVISED],
    group_name="publish",
    kinds={"duckdb"},
    owners=OWNERS,
    code_version=code_version("synchro_dagster.publish.snapshot"),
    pool="duckdb",
    description=(
        "Grain: one DuckDB file holding every month of "
        f"{', '.join(SNAPSHOT_TABLES)}: the analysts' read-only copy. No identity tokens, "
        "no staging rows. Written beside the live warehouse and swapped in at once: an "
        "analyst holding it open never blocks the pipeline. Readable by DuckDB "
        f"{OLDEST_DUCKDB} and later (storage version {STORAGE_VERSION}); every table and "
        "column commented from warehouse.py; marts.code_labels gives each code its French "
        "label; indicators as an integer `count` or a duration in `months`. "
        "File: data/published/analytics.duckdb."
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
        audit.record(conn, synchro, "snapshot", {"rows": sum(counts.values())})
    shared = share_published(synchro)  # the published tree, to SYNCHRO_PUBLISH_GROUP
    context.log.info(f"Snapshot refreshed: {target}; {shared} published file(s) group-readable")
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(target)), **counts})


@dg.asset(
    key=REPORT,
    deps=[PUBLIC_INDICATORS],
    group_name="publish",
    kinds={"excel", "html", "pdf"},
    owners=OWNERS,
    code_version=code_version("synchro_dagster.publish.report"),
    description=(
        "Grain: three files per month in data/published/reports/, synchro_<YYYY-MM>.xlsx "
        "(native Excel charts reading the workbook's own cells), .html (self-contained) and "
        ".pdf (printed from the HTML by headless Chromium): the steering committee's report in "
        "French, built from publish/public_indicators only (suppressed figures shown « < 11 » "
        "or « secret »). A month is written again when its report would change (a "
        "re-delivery changes later months too; its figures, estimate, method or the code), "
        "else its files and date of issue stay. "
        "Without Chromium on the PATH there is no PDF: the xlsx and HTML are written, the "
        "run logs a warning and the metadata 'pdf' says why."
    ),
)
def monthly_report(
    context: dg.AssetExecutionContext, synchro: dg.ResourceParam[Settings]
) -> dg.MaterializeResult:
    source = synchro.public_dir / "indicators.parquet"
    if not source.is_file():
        raise dg.Failure(
            f"No public table at {source}: materialise publish/public_indicators first (the "
            "report reads the protected figures only)."
        )
    table = pl.read_parquet(source)
    if not table.height:
        raise dg.Failure(f"The public table {source} holds no month: nothing to report.")
    with failing_without_text(
        "The monthly report",
        f"Each report in {synchro.reports_dir} is either its new or its previous version.",
    ):
        estimations = synchro.public_dir / "estimations.parquet"
        written = write_reports(
            table,
            synchro.reports_dir,
            synchro,
            date.today(),
            estimates=pl.read_parquet(estimations) if estimations.is_file() else None,
        )
    share_published(synchro)
    if written.pdf_problem:
        context.log.warning(written.pdf_problem)
    last = synchro.reports_dir / f"synchro_{table['mois'].max()}"
    return dg.MaterializeResult(
        metadata={
            "directory": dg.MetadataValue.path(str(synchro.reports_dir)),
            "months_written": dg.MetadataValue.text(
                ", ".join(written.months) or "none: every report was already up to date"
            ),
            "last_month_html": dg.MetadataValue.path(str(last.with_suffix(".html"))),
            "last_month_xlsx": dg.MetadataValue.path(str(last.with_suffix(".xlsx"))),
            "pdf": written.pdf_problem or "printed for every month",
            "files": len(written.files),
            "secret_figures_last_month": written.secret_cells,
        }
    )


def publish_job(territory: str | None) -> "dg.UnresolvedAssetJobDefinition":
    return dg.define_asset_job(
        "publish_job",
        selection=[territory_key(territory, k) for k in (PUBLIC_INDICATORS, SNAPSHOT, REPORT)],
        description="Refreshes the public indicators, the monthly reports and the analysts' "
        "snapshot (after each successful monthly run).",
    )


def publish_after_monthly(
    monthly: "dg.UnresolvedAssetJobDefinition",
    publish: "dg.UnresolvedAssetJobDefinition",
    territory: str | None,
) -> dg.SensorDefinition:
    indicators = territory_key(territory, INDICATORS)

    @dg.run_status_sensor(
        name="publish_after_monthly_run",
        run_status=dg.DagsterRunStatus.SUCCESS,
        request_job=publish,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="After each successful run that computed indicators (the monthly job, a "
        "re-delivery's runs, a backfill from the UI), refreshes publish/public_indicators, "
        "publish/monthly_report and publish/analytics_snapshot.",
    )
    def _publish(context: dg.RunStatusSensorContext):
        run = context.dagster_run
        selection = run.asset_selection  # None: the whole job
        computed = run.job_name == monthly.name if selection is None else indicators in selection
        if not computed:
            return dg.SkipReason(f"run {run.run_id} computed no indicators")
        return dg.RunRequest(run_key=f"publish-after-{run.run_id}")

    return _publish


def partner_feedback_asset(partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    sources = list(all_sources())

    @dg.asset(
        key=FEEDBACK,
        deps=[
            *(dg.AssetKey(["landing", s]) for s in sources),
            *(dg.AssetKey(["staging", s]) for s in sources),
            INDICATORS,
        ],
        partitions_def=partitions,
        group_name="publish",
        kinds={"excel"},
        owners=OWNERS,
        code_version=code_version("synchro_dagster.publish.feedback"),
        pool="duckdb",
        description=(
            "Grain: one French workbook per partner source and month, "
            "data/published/feedback/<source>/retour_<source>_<YYYY-MM>.xlsx: files received "
            "(rows read, staged, set aside, ignored), files refused with the reason and what to "
            "do, rows set aside by row number and why (never a value of the row), columns "
            "changed since the previous delivery, volume against the trailing months, and the "
            "households only that partner named. Written after every monthly run, a failed one "
            "too: a refused delivery is when the partner needs it most. Reads the delivered "
            "files, lineage.files, lineage.refusals, quarantine.* and marts.indicators."
        ),
    )
    def partner_feedback(
        context: dg.AssetExecutionContext, synchro: dg.ResourceParam[Settings]
    ) -> dg.MaterializeResult:
        month = partition_month(context.partition_key)
        with (
            failing_without_text(
                "The partner feedback", f"The workbooks under {synchro.feedback_dir} are unchanged."
            ),
            warehouse.connect(synchro.warehouse_path) as conn,
        ):
            written = publish_feedback(
                conn, synchro.landing_dir, synchro.feedback_dir, month, synchro.min_cell
            )
        share_published(synchro)
        counts = {source: fb.counts() for source, fb in written.items()}
        columns = list(next(iter(counts.values())))
        table = "\n".join(
            [
                "| source | " + " | ".join(columns) + " |",
                "|---|" + "---|" * len(columns),
                *(
                    f"| {s} | " + " | ".join(str(c[k]) for k in columns) + " |"
                    for s, c in counts.items()
                ),
            ]
        )
        context.log.info(f"Partner feedback for {month:%Y-%m} written under {synchro.feedback_dir}")
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(synchro.feedback_dir)),
                "workbooks": len(written),
                "sources_with_a_refused_file": sum(
                    1 for c in counts.values() if c["files_refused"]
                ),
                "rows_quarantined": sum(c["rows_quarantined"] for c in counts.values()),
                "by_source": dg.MetadataValue.md(table),
            }
        )

    return partner_feedback


def feedback_job(territory: str | None) -> "dg.UnresolvedAssetJobDefinition":
    return dg.define_asset_job(
        "feedback_job",
        selection=[territory_key(territory, FEEDBACK)],
        description="Writes every partner's feedback workbook for one month (after each monthly "
        "run, failed or not).",
    )


def feedback_after_monthly(
    monthly: "dg.UnresolvedAssetJobDefinition", feedback: "dg.UnresolvedAssetJobDefinition"
) -> list[dg.SensorDefinition]:
    """Two sensors, one on success and one on failure of a monthly run: the feedback of a month
    whose delivery was refused is the one the partner needs."""

    def after(status: dg.DagsterRunStatus, name: str) -> dg.SensorDefinition:
        @dg.run_status_sensor(
            name=name,
            run_status=status,
            request_job=feedback,
            default_status=dg.DefaultSensorStatus.RUNNING,
            description=f"After each monthly run that ends in {status.value}, writes "
            "publish/partner_feedback for its month.",
        )
        def _feedback(context: dg.RunStatusSensorContext):
            run = context.dagster_run
            month = run.tags.get("dagster/partition")
            if run.job_name != monthly.name or month is None:
                return dg.SkipReason(f"run {run.run_id} is not a monthly run of one month")
            return dg.RunRequest(run_key=f"feedback-after-{run.run_id}", partition_key=month)

        return _feedback

    return [
        after(dg.DagsterRunStatus.SUCCESS, "partner_feedback_after_monthly_run"),
        after(dg.DagsterRunStatus.FAILURE, "partner_feedback_after_failed_monthly_run"),
    ]
