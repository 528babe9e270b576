"""Core assets: household-months, their inflows and outflows, and their provenance.

Thin shell over `synchro_dagster.observation`; the checks are the rules of docs/domain.md §4
(one row per household-month, every household-month traced to records), ERROR and blocking:
a month that breaks one fails its run, and the analyst snapshot is not refreshed with it.
"""

import dagster as dg

from synchro_dagster import warehouse
from synchro_dagster.defs.common import (
    OWNERS,
    check_result,
    check_spec,
    code_version,
    column_lineage,
    failing_without_text,
    require_months_in_order,
    table_schema,
    territory_key,
)
from synchro_dagster.defs.identity import IDENTITY
from synchro_dagster.defs.partitions import partition_month
from synchro_dagster.observation.build import Window, observe_month
from synchro_dagster.observation.checks import household_month_checks, households_by_status
from synchro_dagster.settings import Settings
from synchro_dagster.sources import all_sources

HOUSEHOLD_MONTHS = dg.AssetKey(["core", "household_months"])
HOUSEHOLD_EVENTS = dg.AssetKey(["core", "household_events"])
PROVENANCE = dg.AssetKey(["core", "provenance"])


def table_spec(
    key: dg.AssetKey,
    deps: list,
    sql: str,
    partitions: dg.PartitionsDefinition,
    version: str,
) -> dg.AssetSpec:
    """A `core` or `marts` table: SQL on DuckDB (the file `sql`), its description and column
    schema from the warehouse's declaration."""
    table = ".".join(key.path)
    return dg.AssetSpec(
        key,
        deps=deps,
        description=f"{warehouse.table(table).description} SQL: {sql}.",
        group_name=key.path[0],
        kinds={"duckdb", "sql"},
        owners=OWNERS,
        code_version=version,
        partitions_def=partitions,
        metadata={"dagster/table_name": table, "dagster/column_schema": table_schema(table)},
    )


def core_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    staging = [dg.AssetKey(["staging", s]) for s in all_sources()]
    version = code_version(
        "synchro_dagster.observation.build",
        "synchro_dagster.observation.checks",
        *(f"synchro_dagster.sources.{s}" for s in all_sources()),  # situation ranks
    )

    @dg.multi_asset(
        specs=[
            table_spec(
                HOUSEHOLD_MONTHS,
                [*staging, *IDENTITY],
                "synchro_dagster/observation/household_months.sql",
                partitions,
                version,
            ),
            table_spec(
                HOUSEHOLD_EVENTS,
                [HOUSEHOLD_MONTHS, *IDENTITY],
                "synchro_dagster/observation/household_events.sql",
                partitions,
                version,
            ),
            table_spec(
                PROVENANCE,
                [HOUSEHOLD_MONTHS, *staging],
                "synchro_dagster/observation/provenance.sql",
                partitions,
                version,
            ),
        ],
        check_specs=[
            check_spec(
                "one_row_per_household_month",
                HOUSEHOLD_MONTHS,
                "No household has two rows in the month.",
                partitions,
                blocking=True,
            ),
            check_spec(
                "traced_to_records",
                HOUSEHOLD_MONTHS,
                "Every household-month has at least one staged record behind it in "
                "core.provenance.",
                partitions,
                blocking=True,
            ),
        ],
        name="observation",
        pool="duckdb",
        partitions_def=partitions,
    )
    def _observation(context: dg.AssetExecutionContext, synchro: dg.ResourceParam[Settings]):
        month = partition_month(context.partition_key)
        window = Window(
            month, synchro.inactivity_days, synchro.lookback_months, synchro.retention_months
        )
        with (
            failing_without_text(
                f"Observation of {context.partition_key}",
                "The month's previous tables are unchanged. Re-run the month; if it fails "
                "again, report the run id to the data engineer.",
            ),
            warehouse.connect(synchro.warehouse_path) as conn,
        ):
            require_months_in_order(conn, month, synchro)
            counts = observe_month(conn, window)
            checks = household_month_checks(conn, month)
            statuses = households_by_status(conn, month)
        context.log.info(
            f"{context.partition_key}: {counts['household_months']} household-months "
            f"({statuses.get('active', 0)} active), {counts['household_events']} flows."
        )
        for key in (HOUSEHOLD_MONTHS, HOUSEHOLD_EVENTS, PROVENANCE):
            table = key.path[1]
            extra = {f"households_{k}": v for k, v in statuses.items()}
            yield dg.MaterializeResult(
                asset_key=territory_key(synchro.territory, key),
                metadata={
                    "dagster/row_count": counts[table],
                    "dagster/column_lineage": column_lineage(f"core.{table}", synchro.territory),
                    "inactivity_days": window.inactivity_days,
                    "lookback_months": window.lookback_months,
                    **(extra if key == HOUSEHOLD_MONTHS else {}),
                },
            )
        for outcome in checks:
            yield check_result(outcome)

    return [_observation]
