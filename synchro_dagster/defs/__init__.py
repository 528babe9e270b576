"""The thin Dagster layer, one module per stage: landing, staging, identity, core, marts,
publish; with the monthly job, its schedule and the sensors."""

from __future__ import annotations

import dagster as dg

from synchro_dagster.defs.automation import monthly_job, monthly_schedule
from synchro_dagster.defs.common import in_territory
from synchro_dagster.defs.core import core_assets
from synchro_dagster.defs.identity import identity_assets
from synchro_dagster.defs.landing import landing_sensor, landing_specs
from synchro_dagster.defs.marts import marts_assets
from synchro_dagster.defs.partitions import monthly_partitions
from synchro_dagster.defs.publish import (
    analytics_snapshot,
    feedback_after_monthly,
    feedback_job,
    monthly_report,
    partner_feedback_asset,
    public_indicators,
    publish_after_monthly,
    publish_job,
)
from synchro_dagster.defs.retention import retention_job, retention_schedule
from synchro_dagster.defs.runs import dead_runs_sensor, exclusive_executor, own_location
from synchro_dagster.defs.staging import staging_assets
from synchro_dagster.settings import Settings


def build_definitions(settings: Settings) -> dg.Definitions:
    """The code location of the settings' data directory; with a territory, every asset key
    is under the territory's name (`nord/staging/sne`), so that territories sharing an instance
    never share an asset."""
    partitions = monthly_partitions(settings)
    territory = settings.territory
    job, publish, feedback = monthly_job(), publish_job(territory), feedback_job(territory)
    assets = in_territory(
        territory,
        [
            *landing_specs(partitions),
            *staging_assets(partitions),
            *identity_assets(partitions),
            *core_assets(partitions),
            *marts_assets(partitions),
            public_indicators,
            analytics_snapshot,
            partner_feedback_asset(partitions),
            monthly_report,
        ],
    )
    return dg.Definitions(
        assets=assets,
        jobs=[job, publish, feedback, retention_job],
        schedules=[monthly_schedule(job), retention_schedule],
        sensors=[
            landing_sensor(job, partitions),
            publish_after_monthly(job, publish, territory),
            *feedback_after_monthly(job, feedback),
            dead_runs_sensor(own_location(settings)),
        ],
        executor=exclusive_executor(settings),  # one run at a time, in its own process
        resources={"synchro": settings},  # the one settings object every asset and sensor reads
    )
