"""Marts assets: the monthly indicators analysts and reports read.

Thin shell over `synchro_dagster.indicators`; the checks are the rules of docs/domain.md §4 (stock
balance, parts adding up to totals), ERROR and blocking: a month that breaks one fails its
run, and the analyst snapshot is not refreshed with it. The estimates (hidden households,
linkage ranges: docs/estimation.md) carry a WARN check: an unstable estimate is said, not
blocking.
"""

import dagster as dg

from synchro_dagster import months, warehouse
from synchro_dagster.checks import CheckOutcome
from synchro_dagster.defs.common import (
    OWNERS,
    check_result,
    check_spec,
    code_version,
    column_lineage,
    failing_without_text,
    table_schema,
    territory_key,
)
from synchro_dagster.defs.core import HOUSEHOLD_EVENTS, HOUSEHOLD_MONTHS, IDENTITY, table_spec
from synchro_dagster.defs.partitions import partition_month
from synchro_dagster.indicators.build import indicator_checks, indicators_month
from synchro_dagster.indicators.estimates import estimates_month, stability
from synchro_dagster.indicators.hidden import total
from synchro_dagster.indicators.revision import revise
from synchro_dagster.observation.build import Window
from synchro_dagster.settings import Settings

INDICATORS = dg.AssetKey(["marts", "indicators"])
HIDDEN_POPULATION = dg.AssetKey(["marts", "hidden_population"])
ESTIMATES = dg.AssetKey(["marts", "estimates"])
REVISED = dg.AssetKey(["marts", "revised_indicators"])


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
            asset_key=territory_key(synchro.territory, INDICATORS),
            metadata={
                "dagster/row_count": rows,
                "dagster/column_lineage": column_lineage("marts.indicators", synchro.territory),
                **headline,
            },
        )
        for outcome in checks:
            yield check_result(outcome)

    return [_indicators, _estimates_asset(partitions), _revision_asset(partitions)]


def _revision_asset(partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    spec = table_spec(
        REVISED,
        [INDICATORS, HOUSEHOLD_MONTHS, HOUSEHOLD_EVENTS, *IDENTITY],
        "synchro_dagster/indicators/indicators.sql",
        partitions,
        code_version(
            "synchro_dagster.indicators.revision",
            "synchro_dagster.indicators.build",
            "synchro_dagster.observation.build",
        ),
    )

    @dg.multi_asset(
        specs=[spec],
        check_specs=[
            check_spec(
                "revised_balance",
                REVISED,
                "In every revised month, stock(M) = stock(M-1) + inflow(M) - outflow(M), "
                "exactly, all as revised.",
                partitions,
                blocking=True,
            )
        ],
        name="revised_indicators",
        pool="duckdb",
        partitions_def=partitions,
    )
    def _revised(context: dg.AssetExecutionContext, synchro: dg.ResourceParam[Settings]):
        month = partition_month(context.partition_key)
        window = Window(
            month, synchro.inactivity_days, synchro.lookback_months, synchro.retention_months
        )
        with (
            failing_without_text(
                f"Revision of the months up to {context.partition_key}",
                "The previous revisions are unchanged; the month's own indicators are not "
                "affected.",
            ),
            warehouse.connect(synchro.warehouse_path) as conn,
        ):
            revised, broken = revise(conn, window, synchro.revision_months)
            (rows,) = conn.execute(
                "SELECT count(*) FROM marts.revised_indicators WHERE vintage = ?", [month]
            ).fetchall()[0]
        span = f"{revised[0]:%Y-%m} to {revised[-1]:%Y-%m}" if revised else "none"
        context.log.info(f"{context.partition_key}: months revised {span}")
        yield dg.MaterializeResult(
            asset_key=territory_key(synchro.territory, REVISED),
            metadata={
                "dagster/row_count": rows,
                "dagster/column_lineage": column_lineage(
                    "marts.revised_indicators", synchro.territory
                ),
                "months_revised": span,
                "revision_months": synchro.revision_months,
            },
        )
        yield check_result(
            CheckOutcome(
                "revised_balance",
                not broken,
                {
                    "months": len(revised),
                    "broken": ", ".join(f"{m:%Y-%m}" for m in broken) or "none",
                },
            )
        )

    return _revised


def _estimates_asset(partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    version = code_version(
        "synchro_dagster.indicators.hidden", "synchro_dagster.indicators.estimates"
    )
    deps = [HOUSEHOLD_MONTHS, INDICATORS, *IDENTITY]  # identity writes identity.churn
    specs = [
        dg.AssetSpec(
            key,
            deps=deps if key == HIDDEN_POPULATION else [HIDDEN_POPULATION, *deps],
            description=warehouse.table(".".join(key.path)).description
            + " Python: synchro_dagster/indicators/hidden.py, estimates.py.",
            group_name="marts",
            kinds={"duckdb", "python"},
            owners=OWNERS,
            code_version=version,
            partitions_def=partitions,
            metadata={
                "dagster/table_name": ".".join(key.path),
                "dagster/column_schema": table_schema(".".join(key.path)),
            },
        )
        for key in (HIDDEN_POPULATION, ESTIMATES)
    ]

    @dg.multi_asset(
        specs=specs,
        check_specs=[
            check_spec(
                "estimate_stable",
                HIDDEN_POPULATION,
                "WARN when the month's estimate of the unseen is not to be trusted: the "
                "models of weight >= 5 % disagree by more than a factor 2, a list or a stratum "
                "is too small, a zero cell drives the result, a model of weight >= 5 % puts "
                "no household out of sight, or no estimate could be made.",
                partitions,
            )
        ],
        name="estimates",
        pool="duckdb",
        partitions_def=partitions,
    )
    def _estimates(context: dg.AssetExecutionContext, synchro: dg.ResourceParam[Settings]):
        month = partition_month(context.partition_key)
        with (
            failing_without_text(
                f"Estimates of {context.partition_key}",
                "The month's previous estimates are unchanged.",
            ),
            warehouse.connect(synchro.warehouse_path) as conn,
        ):
            strata, written = estimates_month(conn, month, synchro.inactivity_days)
        seen = sum(s.seen for s in strata)
        check = stability(strata)
        unseen = total(strata)
        if unseen is None:  # a stratum's lists could not support it: said, never a number
            said = {"no_estimate": check.metadata["problems"]}
            context.log.warning(
                f"{context.partition_key}: {seen} seen, no estimate: {said['no_estimate']}"
            )
        else:
            said = {"estimated_unseen": round(unseen[0], 1)}
            context.log.info(f"{context.partition_key}: {seen} seen, about {unseen[0]:.0f} unseen")
        for key in (HIDDEN_POPULATION, ESTIMATES):
            yield dg.MaterializeResult(
                asset_key=territory_key(synchro.territory, key),
                metadata={
                    "dagster/row_count": written[".".join(key.path)],
                    "households_seen": seen,
                    **said,
                },
            )
        yield check_result(check)

    return _estimates
