"""The thin Dagster layer: assets, checks, jobs, schedules and sensors, by stage."""

from __future__ import annotations

import dagster as dg
from dagster_duckdb import DuckDBResource

from synchro_dagster.defs.automation import monthly_job, monthly_schedule
from synchro_dagster.defs.identity import identity_assets
from synchro_dagster.defs.landing import landing_sensor, landing_specs
from synchro_dagster.defs.observation import observation_assets
from synchro_dagster.defs.partitions import monthly_partitions
from synchro_dagster.defs.publish import analytics_snapshot, publish_after_monthly, publish_job
from synchro_dagster.defs.resources import SynchroConfig
from synchro_dagster.defs.staging import staging_assets
from synchro_dagster.settings import Settings


def build_definitions(settings: Settings) -> dg.Definitions:
    partitions = monthly_partitions(settings.first_month)
    job = monthly_job(partitions)
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    return dg.Definitions(
        assets=[
            *landing_specs(partitions),
            *staging_assets(partitions),
            *identity_assets(partitions),
            *observation_assets(partitions),
            analytics_snapshot,
        ],
        jobs=[job, publish_job],
        schedules=[monthly_schedule(job)],
        sensors=[landing_sensor(job, partitions), publish_after_monthly(job)],
        resources={
            "duckdb": DuckDBResource(database=str(settings.warehouse_path)),
            "synchro": SynchroConfig.from_settings(settings),
        },
    )
