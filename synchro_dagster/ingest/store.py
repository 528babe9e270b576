"""Writing one staged source-month: staging rows, quarantined rows and the file registry, together.

The source's month is replaced in all three tables by one `warehouse.replace_month`: a re-run
gives the same tables, a failure leaves the previous state, and an analyst never sees half a
delivery.
"""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import polars as pl

from synchro_dagster import warehouse
from synchro_dagster.ingest.stage import StagedMonth


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
        },
        source=result.source,
    )
