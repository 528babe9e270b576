"""Staging assets: one monthly-partitioned asset per partner source, with its checks.

Thin shell over `synchro_dagster.ingest`: it finds the month's files, refuses
the whole source-month on a file problem (a `dg.Failure` naming the file and
what to do), writes staging, quarantine and `lineage.files` in one
transaction, and reports counts, rates and file hashes — never a row.
"""

from datetime import date

import dagster as dg
import duckdb
import pandera.polars as pa
import polars as pl
from dagster_duckdb import DuckDBResource

from sources import all_sources
from sources.spec import Source
from synchro_dagster.defs.partitions import partition_month
from synchro_dagster.defs.resources import SynchroConfig
from synchro_dagster.ingest.errors import FileRejected
from synchro_dagster.ingest.stage import delivered_files, sha256_of, stage_month
from synchro_dagster.ingest.store import registered_files, write_source_month

OWNERS = ["team:observatoire"]
CODE_VERSION = "1"
VOLUME_TOLERANCE = 0.5  # a month outside ±50 % of the trailing mean is worth a look
TRAILING_MONTHS = 3
VOLUME_MIN_ROWS = 30  # below this trailing mean, month-to-month swings say nothing


def staging_asset(source: Source, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    key = dg.AssetKey(["staging", source.id])
    checks = [
        dg.AssetCheckSpec(
            "schema_valid",
            asset=key,
            description="The month's staged rows satisfy the source's Pandera model.",
        ),
        dg.AssetCheckSpec(
            "rejection_rate",
            asset=key,
            description="Share of quarantined rows under the configured threshold (a single "
            "quarantined row is always allowed).",
        ),
        dg.AssetCheckSpec(
            "column_drift", asset=key, description="Same columns as the previous delivery."
        ),
        dg.AssetCheckSpec(
            "volume", asset=key, description="Staged rows within ±50 % of the trailing 3 months."
        ),
    ]

    @dg.asset(
        key=key,
        deps=[dg.AssetKey(["landing", source.id])],
        partitions_def=partitions,
        group_name="staging",
        kinds={"duckdb", "polars", "pandera"},
        owners=OWNERS,
        code_version=CODE_VERSION,
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
        context: dg.AssetExecutionContext, duckdb: DuckDBResource, synchro: SynchroConfig
    ) -> dg.MaterializeResult:
        month = partition_month(context.partition_key)
        landing = synchro.landing_dir
        files = delivered_files(landing, source, month)
        delivered = {(p.relative_to(landing).as_posix(), sha256_of(p)) for p in files}
        # DuckDBResource closes its connection only on a clean exit: nothing may raise inside
        with duckdb.get_connection() as conn:
            if not files or delivered == registered_files(conn, source.id, month):
                why = "no file delivered" if not files else "identical re-delivery"
                context.log.info(f"{source.id} {month:%Y-%m}: {why}; staged data left as it was.")
                return _unchanged(conn, source, month, synchro, why)
        try:
            result = stage_month(landing, source, month, synchro.key(), files)
        except FileRejected as problem:
            raise dg.Failure(
                description=str(problem),
                metadata={
                    "file": problem.file,
                    "problem": problem.problem,
                    "column": problem.column or "",
                    "what to do": problem.fix,
                },
            ) from None
        except Exception as exc:  # its text may quote a partner's cell: never let it through
            raise dg.Failure(
                description=(
                    f"{source.id} {month:%Y-%m} could not be staged: internal error "
                    f"{type(exc).__name__} (message withheld, it may quote partner "
                    "data). Reproduce with synchro_dagster.ingest.stage.stage_month "
                    "on this source-month in a restricted session."
                ),
            ) from None
        with duckdb.get_connection() as conn:
            write_source_month(conn, result, context.run.run_id)
            checks = _checks(conn, source, month, synchro.max_rejection_rate)
        context.log.info(
            f"{source.id} {month:%Y-%m}: {result.staged.height} rows staged, "
            f"{result.quarantine.height} quarantined from {len(files)} file(s)."
        )
        return dg.MaterializeResult(
            metadata=_metadata(
                result.staged.height,
                result.quarantine,
                result.rows_read,
                files=[(f.file_name, f.sha256) for f in result.files],
            ),
            check_results=checks,
        )

    return _staging


def _unchanged(
    conn: duckdb.DuckDBPyConnection, source: Source, month: date, synchro: SynchroConfig, why: str
) -> dg.MaterializeResult:
    staged = _count(conn, f"staging.{source.id}", month)
    quarantine = _table(conn, f"quarantine.{source.id}", month)
    rows_read = staged + (quarantine.height if quarantine is not None else 0)
    return dg.MaterializeResult(
        metadata={**_metadata(staged, quarantine, rows_read, files=None), "status": why},
        check_results=_checks(conn, source, month, synchro.max_rejection_rate),
    )


def _metadata(
    staged: int,
    quarantine: pl.DataFrame | None,
    rows_read: int,
    files: list[tuple[str, str]] | None,
) -> dict[str, object]:
    quarantined = quarantine.height if quarantine is not None else 0
    reasons = (
        quarantine.explode("reasons").group_by("reasons").len().sort("reasons")
        if quarantined
        else None
    )
    meta: dict[str, object] = {
        "dagster/row_count": staged,
        "rows_read": rows_read,
        "rows_quarantined": quarantined,
        "rejection_rate": round(quarantined / rows_read, 4) if rows_read else 0.0,
        "quarantine_reasons": dg.MetadataValue.json(
            {r: n for r, n in reasons.iter_rows()} if reasons is not None else {}
        ),
    }
    if files is not None:
        meta["files"] = dg.MetadataValue.json({name: sha for name, sha in files})
    return meta


def _table(conn: duckdb.DuckDBPyConnection, table: str, month: date) -> pl.DataFrame | None:
    if not _exists(conn, table):
        return None
    return conn.sql(f"SELECT * FROM {table} WHERE month = ?", params=[month]).pl()


def _count(conn: duckdb.DuckDBPyConnection, table: str, month: date) -> int:
    if not _exists(conn, table):
        return 0
    return conn.execute(f"SELECT count(*) FROM {table} WHERE month = ?", [month]).fetchall()[0][0]


def _exists(conn: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, name = table.split(".")
    return bool(
        conn.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = ? AND table_name = ?",
            [schema, name],
        ).fetchall()[0][0]
    )


def _checks(
    conn: duckdb.DuckDBPyConnection, source: Source, month: date, max_rejection_rate: float
) -> list[dg.AssetCheckResult]:
    """The four checks, computed from what the warehouse now holds for the month."""
    staged = _table(conn, f"staging.{source.id}", month)
    results = []
    if staged is None:
        return [
            dg.AssetCheckResult(check_name=name, passed=True, metadata={"note": "no data yet"})
            for name in ("schema_valid", "rejection_rate", "column_drift", "volume")
        ]
    try:
        source.model.validate(staged, lazy=True)
        results.append(
            dg.AssetCheckResult(
                check_name="schema_valid", passed=True, metadata={"rows": staged.height}
            )
        )
    except pa.errors.SchemaErrors as exc:
        failures = exc.failure_cases.group_by("column", "check").len()
        results.append(
            dg.AssetCheckResult(
                check_name="schema_valid",
                passed=False,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={
                    "failures": dg.MetadataValue.json(
                        [f"{c}: {k} ({n})" for c, k, n in failures.iter_rows()]
                    )
                },
            )
        )

    files = conn.sql(
        "SELECT month, sum(rows_read) AS rows_read, sum(rows_staged) AS rows_staged, "
        "sum(rows_quarantined) AS rows_quarantined, "
        "list_sort(list_distinct(flatten(list(columns_found)))) AS columns "
        "FROM lineage.files WHERE source = ? AND month <= ? GROUP BY month ORDER BY month",
        params=[source.id, month],
    ).pl()
    current = files.filter(pl.col("month") == month)
    read = int(current["rows_read"][0]) if current.height else 0
    quarantined = int(current["rows_quarantined"][0]) if current.height else 0
    rate = quarantined / read if read else 0.0
    allowed = max(1.0, max_rejection_rate * read)  # one broken row in a short list is no trend
    results.append(
        dg.AssetCheckResult(
            check_name="rejection_rate",
            passed=quarantined <= allowed,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "rejection_rate": round(rate, 4),
                "threshold": max_rejection_rate,
                "rows_quarantined": quarantined,
                "rows_allowed": int(allowed),
                "rows_read": read,
            },
        )
    )

    before = files.filter(pl.col("month") < month)
    if current.height and before.height:
        now, previous = set(current["columns"][0]), set(before["columns"][-1])
        results.append(
            dg.AssetCheckResult(
                check_name="column_drift",
                passed=now == previous,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "columns_added": sorted(now - previous),
                    "columns_missing": sorted(previous - now),
                },
            )
        )
    else:
        results.append(
            dg.AssetCheckResult(
                check_name="column_drift",
                passed=True,
                metadata={"note": "no previous delivery to compare"},
            )
        )

    trailing = before.tail(TRAILING_MONTHS)["rows_staged"]
    if current.height and trailing.len():
        mean = float(trailing.mean())
        ratio = int(current["rows_staged"][0]) / mean if mean else 1.0
        results.append(
            dg.AssetCheckResult(
                check_name="volume",
                passed=abs(ratio - 1) <= VOLUME_TOLERANCE or mean < VOLUME_MIN_ROWS,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "rows_staged": int(current["rows_staged"][0]),
                    "trailing_mean": round(mean, 1),
                    "ratio": round(ratio, 3),
                },
            )
        )
    else:
        results.append(
            dg.AssetCheckResult(
                check_name="volume", passed=True, metadata={"note": "no trailing months to compare"}
            )
        )
    return results


def staging_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [staging_asset(source, partitions) for source in all_sources().values()]
