"""Writing one staged source-month: staging rows, quarantined rows and the file registry, together;
or, when the delivery is refused, the refusal alone.

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
from synchro_dagster.ingest.errors import FileRejected
from synchro_dagster.ingest.stage import StagedMonth, sha256_of


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
    files: list[Path],
    landing: Path,
    run_id: str,
) -> None:
    """Records which delivered file stopped the source-month, and why (its staged rows stay)."""
    path = next(p for p in files if p.name == refused.file)
    row = {
        "source": source,
        "month": month,
        "file_name": path.relative_to(landing).as_posix(),
        "sha256": sha256_of(path),
        "problem": refused.problem,
        "column_title": refused.column,
        "detail": refused.detail,
        "run_id": run_id,
        "refused_at": datetime.now(),
    }
    frame = pl.DataFrame([row], schema_overrides={"column_title": pl.String})
    warehouse.replace_month(conn, month, {"lineage.refusals": frame}, source=source)
