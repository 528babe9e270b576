"""The monthly job and what triggers it by itself."""

from __future__ import annotations

import dagster as dg

# the 10th at 06:00, in the partitions' time zone: partners have sent month M-1 by then
DAY_OF_MONTH, HOUR = 10, 6


def monthly_job() -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        name="monthly_job",
        # by group, not key: the same assets under a territory's key prefix
        selection=dg.AssetSelection.groups("staging", "identity", "core", "marts"),
        description="The whole monthly chain for one month: every source staged, then every "
        "stage after it. The schedule, the landing sensor and `synchro run` use it.",
    )


def monthly_schedule(job: dg.UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    """On the 10th, the month that has just ended (the partitioned job's last partition)."""
    return dg.build_schedule_from_partitioned_job(
        job,
        name="monthly_schedule",
        day_of_month=DAY_OF_MONTH,
        hour_of_day=HOUR,
        minute_of_hour=0,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="On the 10th at 06:00 (Paris), runs the monthly job for the previous month.",
    )
