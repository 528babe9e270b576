"""Staging assets: one monthly-partitioned asset per partner source, with its checks.

Thin shell over `synchro_dagster.ingest`: it finds the month's files, has the delivery judged
whole before anything is written (`ingest_source_month`), refuses the whole source-month on a
file problem or on rows that would break the rejection-rate rule (a `dg.Failure` naming the
file and what to do, the check concerned failed with the same words, the refusal kept in
`lineage.refusals` for the partner's feedback), else writes staging, quarantine and
`lineage.files` in one transaction, and reports counts, rates and file hashes — never a row.
"""

from datetime import date

import dagster as dg
import duckdb

from synchro_dagster import warehouse
from synchro_dagster.defs.common import (
    OWNERS,
    check_evaluation,
    check_result,
    check_spec,
    code_version,
    failing_without_text,
)
from synchro_dagster.defs.partitions import partition_month
from synchro_dagster.ingest.checks import (
    TRAILING_MONTHS,
    VOLUME_TOLERANCE,
    month_figures,
    refusal_outcome,
    staging_checks,
    stored_month,
)
from synchro_dagster.ingest.errors import FileRejected
from synchro_dagster.ingest.store import (
    WrongKeyError,
    check_key,
    ingest_source_month,
    unchanged_delivery,
)
from synchro_dagster.privacy.rules import Requests
from synchro_dagster.settings import Settings, pseudonymisation_key
from synchro_dagster.sources import all_sources
from synchro_dagster.sources.spec import Source


def staging_asset(source: Source, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    key = dg.AssetKey(["staging", source.id])
    checks = [
        check_spec(
            "schema_valid",
            key,
            "The month's staged rows satisfy the source's Pandera model.",
            partitions,
        ),
        check_spec(
            "rejection_rate",
            key,
            "Share of quarantined rows under the configured threshold (a single quarantined "
            "row is always allowed).",
            partitions,
        ),
        check_spec("column_drift", key, "Same columns as the previous delivery.", partitions),
        check_spec(
            "volume",
            key,
            f"Staged rows within ±{VOLUME_TOLERANCE:.0%} of the trailing {TRAILING_MONTHS} months.",
            partitions,
        ),
    ]

    @dg.asset(
        key=key,
        deps=[dg.AssetKey(["landing", source.id])],
        partitions_def=partitions,
        group_name="staging",
        kinds={"duckdb", "polars", "pandera"},
        owners=OWNERS,
        code_version=code_version(
            "synchro_dagster.ingest.store",
            "synchro_dagster.ingest.checks",
            f"synchro_dagster.sources.{source.id}",
        ),
        pool="duckdb",
        check_specs=checks,
        description=(
            f"{source.partner}: {source.description}\n\n"
            f"Grain: one row per usable row of the partner's files for the month, pseudonymised "
            f"(keyed tokens only) and in canonical codes. Table `staging.{source.id}`; "
            f"rejected rows in `quarantine.{source.id}` with reason codes; files in "
            f"`lineage.files`."
        ),
        metadata={"dagster/table_name": f"staging.{source.id}", "partner": source.partner},
    )
    def _staging(
        context: dg.AssetExecutionContext, synchro: dg.ResourceParam[Settings]
    ) -> dg.MaterializeResult:
        month = partition_month(context.partition_key)
        landing = synchro.landing_dir
        with warehouse.connect(synchro.warehouse_path) as conn:
            try:
                check_key(conn, pseudonymisation_key(synchro))
            except WrongKeyError as wrong:
                raise dg.Failure(description=str(wrong)) from None
            requests = Requests.load(conn)
            why = unchanged_delivery(conn, landing, source, month)
            if why:
                context.log.info(f"{source.id} {month:%Y-%m}: {why}; staged data left as it was.")
                staged, quarantine = stored_month(conn, source.id, month)
                count = staged or 0
                rows_read = count + (quarantine.height if quarantine is not None else 0)
                return dg.MaterializeResult(
                    metadata={**month_figures(count, quarantine, rows_read), "status": why},
                    check_results=_checks(conn, source, month, synchro),
                )
        with failing_without_text(
            f"{source.id} {month:%Y-%m} could not be staged",
            "Reproduce with synchro_dagster.ingest.stage.stage_month on this source-month "
            "in a restricted session.",
        ):
            try:
                result = ingest_source_month(
                    synchro.warehouse_path,
                    landing,
                    source,
                    month,
                    pseudonymisation_key(synchro),
                    synchro.max_rejection_rate,
                    context.run.run_id,
                    requests,
                )
            except FileRejected as problem:  # recorded in lineage.refusals for partner feedback
                context.log_event(
                    check_evaluation(
                        refusal_outcome(problem), context.asset_key, context.partition_key
                    )
                )
                raise dg.Failure(
                    description=str(problem),
                    metadata={
                        "file": problem.file,
                        "problem": problem.problem,
                        "column": problem.column or "",
                        "what to do": problem.fix,
                    },
                ) from None
        with warehouse.connect(synchro.warehouse_path) as conn:
            checks = _checks(conn, source, month, synchro)
        context.log.info(
            f"{source.id} {month:%Y-%m}: {result.staged.height} rows staged, "
            f"{result.quarantine.height} quarantined from {len(result.files)} file(s)."
        )
        return dg.MaterializeResult(
            metadata={
                **month_figures(result.staged.height, result.quarantine, result.rows_read),
                "files": {f.file_name: f.sha256 for f in result.files},
            },
            check_results=checks,
        )

    return _staging


def _checks(
    conn: duckdb.DuckDBPyConnection, source: Source, month: date, synchro: Settings
) -> list[dg.AssetCheckResult]:
    outcomes = staging_checks(conn, source, month, synchro.max_rejection_rate)
    return [check_result(o) for o in outcomes]


def staging_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [staging_asset(source, partitions) for source in all_sources().values()]
