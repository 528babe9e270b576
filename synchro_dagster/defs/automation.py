"""The monthly job and what triggers it by itself."""

from __future__ import annotations

from datetime import datetime

import dagster as dg

MONTHLY_CRON = "0 6 10 * *"  # day 10, 06:00: partners have sent month M-1 by then
TIMEZONE = "Europe/Paris"


def monthly_job(partitions: dg.PartitionsDefinition) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        name="monthly_job",
        selection=dg.AssetSelection.key_prefixes(["staging"], ["identity"], ["core"], ["marts"]),
        description="The whole monthly chain for one month: every source staged, then every "
        "stage after it. The schedule, the landing sensor and `synchro run` use it.",
    )


def previous_month(moment: datetime) -> str:
    first = moment.replace(day=1)
    year, month = (first.year - 1, 12) if first.month == 1 else (first.year, first.month - 1)
    return f"{year:04d}-{month:02d}"


def monthly_schedule(job: dg.UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="monthly_schedule",
        job=job,
        cron_schedule=MONTHLY_CRON,
        execution_timezone=TIMEZONE,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="On the 10th at 06:00 (Paris), runs the monthly job for the previous month.",
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        partition = previous_month(context.scheduled_execution_time)
        return dg.RunRequest(run_key=f"monthly-{partition}", partition_key=partition)

    return _schedule
