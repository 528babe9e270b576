"""Retention: the monthly job that deletes what the rule no longer allows (see
synchro_dagster/privacy/retention.py), and its schedule."""

from datetime import date

import dagster as dg

from synchro_dagster.defs.automation import DAY_OF_MONTH, HOUR
from synchro_dagster.defs.partitions import TIMEZONE
from synchro_dagster.privacy.retention import run_retention
from synchro_dagster.settings import Settings

# after the monthly job has staged and computed the month just ended: a person a partner names
# again in it is not deleted the day before their record is read
RETENTION_DAY = DAY_OF_MONTH + 5


@dg.op(
    name="retention",
    description="Deletes the person-level rows of persons no partner named in the last "
    "SYNCHRO_RETENTION_MONTHS months and the partner files ingested more than "
    "SYNCHRO_LANDING_RETENTION_DAYS days ago, refreshes the analysts' snapshot; rows and files "
    "deleted are counted in the run's metadata and the audit trail, never an identity.",
    pool="duckdb",
)
def retention_op(context: dg.OpExecutionContext, synchro: dg.ResourceParam[Settings]) -> dg.Output:
    run = run_retention(synchro, date.today())
    for line in run.lines():
        context.log.info(line)
    return dg.Output(None, metadata=run.counts())


@dg.job(
    name="retention_job",
    description="Retention (GDPR): persons no partner named for SYNCHRO_RETENTION_MONTHS months "
    "and expired partner files deleted; published figures kept.",
)
def retention_job() -> None:
    retention_op()


retention_schedule = dg.ScheduleDefinition(
    name="retention_schedule",
    job=retention_job,
    cron_schedule=f"0 {HOUR} {RETENTION_DAY} * *",
    execution_timezone=TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=f"On the {RETENTION_DAY}th at {HOUR:02d}:00 (Paris), after the monthly job: "
    "the retention run.",
)
