"""Writing one staged source-month: staging rows, quarantined rows and the file registry, together;
or, when the delivery is refused (`ingest_source_month` judges it whole before writing), the
refusal alone.

The source's month is replaced in all four tables by one `warehouse.replace_month`: a re-run
gives the same tables, a failure leaves the previous state, and an analyst never sees half a
delivery. A refusal replaces only the source-month's `lineage.refusals` row: its staged data
stay as they were, and the partner feedback can say which file to fix.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import duckdb
import polars as pl

from synchro_dagster import warehouse
from synchro_dagster.identity.tokens import keyed
from synchro_dagster.ingest.checks import refuse_unusable
from synchro_dagster.ingest.errors import FileRejected
from synchro_dagster.ingest.stage import (
    StagedMonth,
    delivered_files,
    delivery_problem,
    sha256_of,
    stage_month,
)
from synchro_dagster.privacy.rules import Requests
from synchro_dagster.sources.spec import Source


class WrongKeyError(RuntimeError):
    """The key given is not the one the warehouse's tokens were made with."""


def key_fingerprint(key: bytes) -> str:
    """A keyed hash of a constant: tells two keys apart, says nothing of either."""
    return keyed(key, "fingerprint", "synchro warehouse", chars=16)


def check_key(conn: duckdb.DuckDBPyConnection, key: bytes, record: bool = True) -> None:
    """Refuses a key other than the one the warehouse was built with (tokens under another key
    link to nothing: every person would look new); the first key is recorded (`record`)."""
    if record:
        warehouse.ensure(conn, "lineage.key_fingerprint")
    elif "lineage.key_fingerprint" not in warehouse.existing_tables(conn, "lineage"):
        return
    rows = conn.execute("SELECT fingerprint, recorded_at FROM lineage.key_fingerprint").fetchall()
    if not rows and record:
        conn.execute(
            "INSERT INTO lineage.key_fingerprint VALUES (?, current_timestamp)",
            [key_fingerprint(key)],
        )
    elif rows and rows[0][0] != key_fingerprint(key):
        raise WrongKeyError(
            "This warehouse was built with another pseudonymisation key (the one in use since "
            f"{rows[0][1]:%d/%m/%Y}). Records tokenised with this key would link to no one: "
            "every person would look new. Nothing was read or written. Set the key the "
            "warehouse was built with (SYNCHRO_PSEUDONYMISATION_KEY or the key file; after a "
            "rotation, the whole chain of keys the key file holds, not one of them); keys "
            "change only by `synchro key rotate`, which re-keys the warehouse. If a rotation was "
            "interrupted, the chain is in the key file's `.new` copy beside it."
        )


def registered_files(
    conn: duckdb.DuckDBPyConnection, source: str, month: date
) -> set[tuple[str, str]]:
    """(file name, sha256) already ingested for a source-month."""
    warehouse.ensure(conn, "lineage.files")
    rows = conn.execute(
        "SELECT file_name, sha256 FROM lineage.files WHERE source = ? AND month = ?",
        [source, month],
    ).fetchall()
    return {(name, sha) for name, sha in rows}


def unchanged_delivery(
    conn: duckdb.DuckDBPyConnection, landing: Path, source: Source, month: date
) -> str | None:
    """Why the source-month needs no staging ("no file delivered", "identical re-delivery"),
    or None. A refusal of a delivery since taken back (the folder holds again what is staged)
    is over: it is cleared, so that the partner's feedback no longer asks for a fix."""
    if delivery_problem(landing, source, month) is not None:
        return None
    files = delivered_files(landing, source, month)
    delivered = {(p.relative_to(landing).as_posix(), sha256_of(p)) for p in files}
    if files and delivered != registered_files(conn, source.id, month):
        return None
    warehouse.ensure(conn, "lineage.refusals")
    refused = conn.execute(
        "SELECT count(*) FROM lineage.refusals WHERE source = ? AND month = ?", [source.id, month]
    ).fetchall()[0][0]
    if refused:
        warehouse.replace_month(conn, month, {"lineage.refusals": pl.DataFrame()}, source=source.id)
    return "identical re-delivery" if files else "no file delivered"


def write_source_month(conn: duckdb.DuckDBPyConnection, result: StagedMonth, run_id: str) -> None:
    files = pl.DataFrame(
        [
            {
                "source": result.source,
                "month": result.month,
                "file_name": f.file_name,
                "sha256": f.sha256,
                "size_bytes": f.size_bytes,
                "sheet": f.sheet,
                "header_row": f.header_row,
                "rows_read": f.rows_read,
                "rows_staged": f.rows_staged,
                "rows_quarantined": f.rows_quarantined,
                "rows_ignored": f.rows_ignored,
                "rows_opposed": f.rows_opposed,
                "columns_found": f.headers,
                "columns_unmapped": f.unmapped_headers,
                "model_version": result.model_version,
                "run_id": run_id,
                "loaded_at": datetime.now(),
            }
            for f in result.files
        ],
        schema_overrides={
            "columns_found": pl.List(pl.String),
            "columns_unmapped": pl.List(pl.String),
        },
    )
    warehouse.replace_month(
        conn,
        result.month,
        {
            f"staging.{result.source}": result.staged,
            f"quarantine.{result.source}": result.quarantine,
            "lineage.files": files,
            "lineage.refusals": pl.DataFrame(),  # a refusal of this source-month is over
        },
        source=result.source,
    )


def record_refusal(
    conn: duckdb.DuckDBPyConnection,
    source: str,
    month: date,
    refused: FileRejected,
    landing: Path,
    run_id: str,
) -> None:
    """Records which delivered file stopped the source-month, and why (its staged rows stay).
    A link out of the landing tree or a folder is named but never read (no sha256)."""
    path = refused.path if refused.path.is_absolute() else landing / refused.path
    readable = path.is_file() and path.resolve().is_relative_to(landing.resolve())
    row = {
        "source": source,
        "month": month,
        "file_name": path.relative_to(landing).as_posix(),
        "sha256": sha256_of(path) if readable else "",
        "problem": refused.problem + (f":{refused.reason}" if refused.reason else ""),
        "column_title": refused.column,
        "detail": refused.detail,
        "run_id": run_id,
        "refused_at": datetime.now(),
    }
    frame = pl.DataFrame([row], schema_overrides={"column_title": pl.String})
    warehouse.replace_month(conn, month, {"lineage.refusals": frame}, source=source)


def ingest_source_month(
    warehouse_path: Path,
    landing: Path,
    source: Source,
    month: date,
    key: bytes,
    max_rejection_rate: float,
    run_id: str,
    requests: Requests | None = None,
) -> StagedMonth:
    """Validates the source-month's whole delivery, then writes it; or refuses it, records the
    refusal and raises `FileRejected`, writing nothing else: the previous state stays.

    Staging runs without the warehouse open (it can take a while on a large delivery; an open
    DuckDB file blocks every other process)."""
    try:
        problem = delivery_problem(landing, source, month)
        if problem:
            raise problem
        files = delivered_files(landing, source, month)
        result = stage_month(landing, source, month, key, files, requests)
        refuse_unusable(result, max_rejection_rate)
    except FileRejected as refused:  # the partner's to fix: its text names no person
        with warehouse.connect(warehouse_path) as conn:
            record_refusal(conn, source.id, month, refused, landing, run_id)
        raise
    with warehouse.connect(warehouse_path) as conn:
        write_source_month(conn, result, run_id)
    return result
