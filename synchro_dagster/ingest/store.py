"""Writing one staged source-month: staging rows, quarantined rows and the file registry, together.

The month of that source is deleted then inserted in all three tables inside
one transaction: a re-run gives the same tables, a failure leaves the previous
state, and an analyst never sees half a delivery.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import polars as pl

from synchro_dagster.ingest.stage import StagedMonth

LINEAGE_FILES_DDL = """
CREATE TABLE IF NOT EXISTS lineage.files (
    source VARCHAR NOT NULL,
    month DATE NOT NULL,
    file_name VARCHAR NOT NULL,       -- relative to the landing directory
    sha256 VARCHAR NOT NULL,
    size_bytes BIGINT NOT NULL,
    sheet VARCHAR,
    header_row INTEGER,
    rows_read INTEGER NOT NULL,
    rows_staged INTEGER NOT NULL,
    rows_quarantined INTEGER NOT NULL,
    rows_ignored INTEGER NOT NULL,     -- blank, title, total and comment rows
    columns_found VARCHAR[],          -- canonical fields the header provided
    columns_unmapped VARCHAR[],       -- partner headers the source does not use
    run_id VARCHAR,
    loaded_at TIMESTAMP NOT NULL
)
"""


def staged_union(conn: duckdb.DuckDBPyConnection, columns: str) -> tuple[str, int]:
    """SQL reading `columns` from every staging table up to a month (`month <= ?`), and how many
    times that month must be passed as a parameter."""
    tables = [
        t
        for (t,) in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'staging' "
            "ORDER BY 1"
        ).fetchall()
    ]
    union = " UNION ALL ".join(
        f"SELECT {columns} FROM staging.{t} WHERE month <= ?" for t in tables
    )
    return union, len(tables)


def registered_files(conn: duckdb.DuckDBPyConnection, source: str, month) -> set[tuple[str, str]]:
    """(file name, sha256) already ingested for a source-month."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS lineage")
    conn.execute(LINEAGE_FILES_DDL)
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
    conn.register("_staged", result.staged)
    conn.register("_quarantine", result.quarantine)
    conn.register("_files", files)
    conn.execute("CREATE SCHEMA IF NOT EXISTS staging")
    conn.execute("CREATE SCHEMA IF NOT EXISTS quarantine")
    conn.execute("CREATE SCHEMA IF NOT EXISTS lineage")
    conn.execute(LINEAGE_FILES_DDL)
    conn.execute("BEGIN TRANSACTION")
    try:
        for table, frame in (
            (f"staging.{result.source}", "_staged"),
            (f"quarantine.{result.source}", "_quarantine"),
        ):
            conn.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM {frame} LIMIT 0")
            conn.execute(f"DELETE FROM {table} WHERE month = ?", [result.month])
            conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {frame}")
        conn.execute(
            "DELETE FROM lineage.files WHERE source = ? AND month = ?",
            [result.source, result.month],
        )
        if files.height:
            conn.execute("INSERT INTO lineage.files BY NAME SELECT * FROM _files")
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise
    finally:
        for name in ("_staged", "_quarantine", "_files"):
            conn.unregister(name)
