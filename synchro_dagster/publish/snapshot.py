"""The analysts' read-only copy of the warehouse: household-level tables and indicators, no
identity tokens, written beside the live file and swapped in at once.

An analyst holding the previous copy open keeps reading it (the swap replaces the name, not
the open file) and never blocks the pipeline, which only ever writes the live warehouse.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from synchro_dagster import warehouse

# what analysts get; identity.* and staging.* (keyed tokens) and quarantine.* stay behind
SNAPSHOT_TABLES = (
    "core.household_months",
    "core.household_events",
    "core.provenance",
    "marts.indicators",
    "marts.indicator_definitions",
    "lineage.files",
)


def publish_snapshot(conn: duckdb.DuckDBPyConnection, target: Path) -> dict[str, int]:
    """Copies SNAPSHOT_TABLES that exist into `target` (replaced atomically); rows per table."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    existing = set(warehouse.existing_tables(conn))
    counts = {}
    conn.execute(f"ATTACH {warehouse.quoted(str(partial))} AS snapshot")
    try:
        for name in SNAPSHOT_TABLES:
            if name not in existing:
                continue
            schema = name.split(".")[0]
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS snapshot.{schema}")
            conn.execute(f"CREATE TABLE snapshot.{name} AS SELECT * FROM {name}")
            counts[name] = conn.execute(f"SELECT count(*) FROM snapshot.{name}").fetchall()[0][0]
    finally:
        conn.execute("DETACH snapshot")
    os.chmod(partial, 0o440)  # household-level data: the project team only
    os.replace(partial, target)
    return counts
