"""Marts assets: the monthly indicators analysts and reports read.

Thin shell over `synchro_dagster.indicators`; the checks are the rules of docs/domain.md §4 (stock
balance, parts adding up to totals), ERROR and blocking: a month that breaks one fails its
run, and the analyst snapshot is not refreshed with it.
"""

import dagster as dg

from synchro_dagster import months, warehouse
from synchro_dagster.defs.common import (
    check_result,
    check_spec,
    code_version,
    column_lineage,
    failing_without_text,
)
from synchro_dagster.defs.core import HOUSEHOLD_EVENTS, HOUSEHOLD_MONTHS, table_spec
from synchro_dagster.defs.partitions import partition_month
from synchro_dagster.indicators.build import indicator_checks, indicators_month
from synchro_dagster.settings import Settings

INDICATORS = dg.AssetKey(["marts", "indicators"])


def marts_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    spec = table_spec(
        INDICATORS,
        [
            HOUSEHOLD_MONTHS,
            HOUSEHOLD_EVENTS,
            dg.AssetDep(INDICATORS, partition_mapping=dg.TimeWindowPartitionMapping(-1, -1)),
        ],
        "synchro_dagster/indicators/indicators.sql",
        partitions,
        code_version("synchro_dagster.indicators.build"),
    )

    @dg.multi_asset(
        specs=[spec],
        check_specs=[
            check_spec(
                "stock_balance",
                INDICATORS,
                "stock(M) = stock(M-1) + inflow(M) - outflow(M), exactly.",
                partitions,
                blocking=True,
            ),
            check_spec(
                "parts_sum_to_totals",
                INDICATORS,
                "For each additive indicator and dimension, the parts add up to the total.",
                partitions,
                blocking=True,
            ),
        ],
        name="indicators",
        pool="duckdb",
        partitions_def=partitions,
    )
    def _indicators(context: dg.AssetExecutionContext, synchro: dg.ResourceParam[Settings]):
        month = partition_month(context.partition_key)
        with (
            failing_without_text(
                f"Indicators of {context.partition_key}",
                "The month's previous indicators are unchanged.",
            ),
            warehouse.connect(synchro.warehouse_path) as conn,
        ):
            rows = indicators_month(conn, month)
            months.record(conn, month, "marts", context.run.run_id)
            headline, checks = indicator_checks(conn, month)
        context.log.info(f"{context.partition_key}: {headline}")
        yield dg.MaterializeResult(
            asset_key=INDICATORS,
            metadata={
                "dagster/row_count": rows,
                "dagster/column_lineage": column_lineage("marts.indicators"),
                **headline,
            },
        )
        for outcome in checks:
            yield check_result(outcome, INDICATORS)

    return [_indicators]
