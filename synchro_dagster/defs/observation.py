"""Observation and indicator assets: household-months, flows, provenance, monthly indicators.

Thin shell over `synchro_dagster.observation` and `synchro_dagster.indicators`; the checks
are the rules of DOMAIN §4 (one row per household-month, every household-month traced to
records, stock balance, parts adding up to totals), all ERROR and blocking: a month that
breaks one fails its run, and the analyst snapshot is not refreshed with it.
"""

import dagster as dg
from dagster_duckdb import DuckDBResource

from sources import all_sources
from synchro_dagster.defs.partitions import partition_month
from synchro_dagster.defs.resources import SynchroConfig
from synchro_dagster.indicators.build import (
    balance_holds,
    indicators_month,
    parts_mismatches,
    stock_balance,
)
from synchro_dagster.observation.build import Window, observe_month
from synchro_dagster.observation.checks import (
    duplicate_household_months,
    untraced_household_months,
)
from synchro_dagster.observation.lineage import column_lineage, column_schema

OWNERS = ["team:observatoire"]
CODE_VERSION = "1"
HOUSEHOLD_MONTHS = dg.AssetKey(["core", "household_months"])
HOUSEHOLD_EVENTS = dg.AssetKey(["core", "household_events"])
PROVENANCE = dg.AssetKey(["core", "provenance"])
INDICATORS = dg.AssetKey(["marts", "indicators"])
IDENTITY = [dg.AssetKey(["identity", "person_links"]), dg.AssetKey(["identity", "households"])]


def _spec(key: dg.AssetKey, deps: list, description: str, partitions) -> dg.AssetSpec:
    table = ".".join(key.path)
    return dg.AssetSpec(
        key,
        deps=deps,
        description=description,
        group_name=key.path[0],
        kinds={"duckdb", "sql"},
        owners=OWNERS,
        code_version=CODE_VERSION,
        partitions_def=partitions,
        metadata={"dagster/table_name": table, "dagster/column_schema": column_schema(table)},
    )


def observation_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    staging = [dg.AssetKey(["staging", s]) for s in all_sources()]

    @dg.multi_asset(
        specs=[
            _spec(
                HOUSEHOLD_MONTHS,
                [*staging, *IDENTITY],
                "Grain: one row per household and month, for every household with a record "
                "dated in the inactivity window. Status (active, housed, deceased, "
                "left_territory, inactive), situation by the latest dated evidence (source "
                "rank on ties), ETHOS Light, composition, persons and age bands, first month "
                "seen, sources of the month, open needs, answers received. "
                "SQL: synchro_dagster/observation/household_months.sql.",
                partitions,
            ),
            _spec(
                HOUSEHOLD_EVENTS,
                [HOUSEHOLD_MONTHS, *IDENTITY],
                "Grain: one row per household entering or leaving the stock in the month, "
                "with its type (newly identified, returned from housing or from inactivity; "
                "to housing by kind, to inactivity, deceased, left the territory, duplicate "
                "merged), against last month's stored household-months (months run in order: "
                "identity and indicators depend on their month before). Last month's stock + "
                "inflows - outflows = this month's stock. "
                "SQL: synchro_dagster/observation/household_events.sql.",
                partitions,
            ),
            _spec(
                PROVENANCE,
                [HOUSEHOLD_MONTHS, *staging],
                "Grain: one row per household-month and staged record behind it (source, file "
                "sha256, row number): any figure traces to partner files with one join on "
                "lineage.files. SQL: synchro_dagster/observation/provenance.sql.",
                partitions,
            ),
        ],
        check_specs=[
            dg.AssetCheckSpec(
                "one_row_per_household_month",
                asset=HOUSEHOLD_MONTHS,
                blocking=True,
                description="No household has two rows in the month.",
            ),
            dg.AssetCheckSpec(
                "traced_to_records",
                asset=HOUSEHOLD_MONTHS,
                blocking=True,
                description="Every household-month has at least one staged record behind it "
                "in core.provenance.",
            ),
        ],
        name="observation",
        pool="duckdb",
        partitions_def=partitions,
    )
    def _observation(
        context: dg.AssetExecutionContext, duckdb: DuckDBResource, synchro: SynchroConfig
    ):
        month = partition_month(context.partition_key)
        window = Window(month, synchro.inactivity_days, synchro.lookback_months)
        failure = None
        # DuckDBResource closes its connection only on a clean exit: nothing may raise inside
        with duckdb.get_connection() as conn:
            try:
                counts = observe_month(conn, window)
                duplicates = duplicate_household_months(conn, month)
                untraced = untraced_household_months(conn, month)
                statuses = dict(
                    conn.execute(
                        "SELECT status, count(*) FROM core.household_months WHERE month = ? "
                        "GROUP BY 1",
                        [month],
                    ).fetchall()
                )
            except Exception as error:  # noqa: BLE001 - reported below, by type only
                failure = type(error).__name__
        if failure:
            raise dg.Failure(
                f"Observation of {context.partition_key} failed ({failure}); the month's "
                "previous tables are unchanged. Re-run the month; if it fails again, report "
                "the run id to the data engineer."
            )
        context.log.info(
            f"{context.partition_key}: {counts['household_months']} household-months "
            f"({statuses.get('active', 0)} active), {counts['household_events']} flows."
        )
        for key, table in (
            (HOUSEHOLD_MONTHS, "household_months"),
            (HOUSEHOLD_EVENTS, "household_events"),
            (PROVENANCE, "provenance"),
        ):
            extra = {f"households_{k}": v for k, v in statuses.items()}
            yield dg.MaterializeResult(
                asset_key=key,
                metadata={
                    "dagster/row_count": counts[table],
                    "dagster/column_lineage": column_lineage(f"core.{table}"),
                    "inactivity_days": window.inactivity_days,
                    "lookback_months": window.lookback_months,
                    **(extra if key == HOUSEHOLD_MONTHS else {}),
                },
            )
        yield dg.AssetCheckResult(
            asset_key=HOUSEHOLD_MONTHS,
            check_name="one_row_per_household_month",
            passed=duplicates == 0,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"households_with_several_rows": duplicates},
        )
        yield dg.AssetCheckResult(
            asset_key=HOUSEHOLD_MONTHS,
            check_name="traced_to_records",
            passed=untraced == 0,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"household_months_without_records": untraced},
        )

    @dg.asset(
        key=INDICATORS,
        deps=[
            HOUSEHOLD_MONTHS,
            HOUSEHOLD_EVENTS,
            dg.AssetDep(INDICATORS, partition_mapping=dg.TimeWindowPartitionMapping(-1, -1)),
        ],
        partitions_def=partitions,
        group_name="marts",
        kinds={"duckdb", "sql"},
        owners=OWNERS,
        code_version=CODE_VERSION,
        pool="duckdb",
        description=(
            "Grain: one row per month, indicator and dimension (null for the total, otherwise "
            "'name=value'): stock, inflow and outflow of households, persons, durations, needs "
            "and answers, coverage by source. Definitions in marts.indicator_definitions and "
            "docs/indicators.md. SQL: synchro_dagster/indicators/indicators.sql."
        ),
        metadata={
            "dagster/table_name": "marts.indicators",
            "dagster/column_schema": column_schema("marts.indicators"),
        },
        check_specs=[
            dg.AssetCheckSpec(
                "stock_balance",
                asset=INDICATORS,
                blocking=True,
                description="stock(M) = stock(M-1) + inflow(M) - outflow(M), exactly.",
            ),
            dg.AssetCheckSpec(
                "parts_sum_to_totals",
                asset=INDICATORS,
                blocking=True,
                description="For each additive indicator and dimension, the parts add up to "
                "the total.",
            ),
        ],
    )
    def _indicators(context: dg.AssetExecutionContext, duckdb: DuckDBResource):
        month = partition_month(context.partition_key)
        failure = None
        with duckdb.get_connection() as conn:
            try:
                rows = indicators_month(conn, month)
                figures = stock_balance(conn, month)
                mismatches = parts_mismatches(conn, month)
            except Exception as error:  # noqa: BLE001 - reported below, by type only
                failure = type(error).__name__
        if failure:
            raise dg.Failure(
                f"Indicators of {context.partition_key} failed ({failure}); the month's "
                "previous indicators are unchanged."
            )
        headline = {k: int(v) for k, v in figures.items()}
        context.log.info(f"{context.partition_key}: {headline}")
        yield dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "dagster/column_lineage": column_lineage("marts.indicators"),
                **headline,
            }
        )
        yield dg.AssetCheckResult(
            check_name="stock_balance",
            passed=balance_holds(figures),
            severity=dg.AssetCheckSeverity.ERROR,
            metadata=headline,
        )
        yield dg.AssetCheckResult(
            check_name="parts_sum_to_totals",
            passed=not mismatches,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"mismatches": "; ".join(mismatches) or "none"},
        )

    return [_observation, _indicators]
