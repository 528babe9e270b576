"""The analysts' read-only copy of the warehouse: household-level tables and indicators, no
identity tokens, written beside the live file and swapped in at once.

An analyst holding the previous copy open keeps reading it (the swap replaces the name, not
the open file) and never blocks the pipeline, which only ever writes the live warehouse.

The copy is for people with a DuckDB they installed themselves: it is written in an older
storage format (DuckDB 2.0's own cannot be read by 1.x), every table and column carries its
comment from the warehouse's declarations, codes have their French labels beside them
(`marts.code_labels`), and indicators are integers where they count (`count`) and decimals
only where they measure a duration (`months`).
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from synchro_dagster import warehouse
from synchro_dagster.privacy.access import share_published
from synchro_dagster.publish.labels import TOTAL_LABEL, code_tables
from synchro_dagster.publish.xlsx import workbook
from synchro_dagster.settings import Settings
from synchro_dagster.warehouse import Column, Table

# what analysts get; identity.* and staging.* (keyed tokens) and quarantine.* stay behind
SNAPSHOT_TABLES = (
    "core.household_months",
    "core.household_events",
    "core.provenance",
    "marts.indicators",
    "marts.revised_indicators",  # the same figures revised with identity as known later
    "marts.indicator_definitions",
    "marts.hidden_population",  # estimates, apart from the counts (docs/estimation.md)
    "marts.estimates",
    "lineage.files",
)
STORAGE_VERSION = "v1.0.0"  # the oldest format DuckDB 1.x reads; 2.0 writes 2.0-only by default
OLDEST_DUCKDB = "1.0.0"  # the oldest DuckDB (CLI or Python) that opens the snapshot: tested
DURATION_UNIT = "months"  # indicators measured in months are durations; every other one counts

_LIVE = warehouse.table("marts.indicators")
_SAME = {c.name: c for c in _LIVE.columns if c.name != "value"}
INDICATORS = Table(
    "marts.indicators",
    _LIVE.grain,
    (
        *_SAME.values(),
        Column("unit", "VARCHAR", "households | persons | requests | months"),
        Column(
            "count",
            "BIGINT",
            "the figure, for an indicator counting households, persons or requests (else NULL)",
        ),
        Column(
            "months",
            "DOUBLE",
            "the figure, for a duration, mean or median in months (else NULL)",
        ),
    ),
    meaning=f"{_LIVE.meaning} Each row has its figure in `count` (an integer) or in `months` "
    "(a duration), never both.",
)
CODE_LABELS = Table(
    "marts.code_labels",
    "one row per code an analyst meets in this file: indicators, dimension families, and the "
    "codes of each family (situation, ethos, composition, type, need, answer, source, status, "
    "flow, housing_kind…)",
    (
        Column(
            "family",
            "VARCHAR",
            "'indicator', 'dimension' (a family itself), or the family the code belongs to: the "
            "part before '=' in marts.indicators.dimension, or the column of core.* it fills",
        ),
        Column("code", "VARCHAR", "the code as the tables hold it"),
        Column("libelle", "VARCHAR", "its French label, as the public tables and reports show it"),
    ),
    by_month=False,
    meaning="Join it to read a code in French, e.g. ON family = 'situation' AND code = situation.",
)


def snapshot_tables() -> list[Table]:
    """Every table of the snapshot, as the analyst reads it."""
    shaped = {INDICATORS.name: INDICATORS}
    return [shaped.get(name) or warehouse.table(name) for name in SNAPSHOT_TABLES] + [CODE_LABELS]


def _select(name: str, home: str) -> str:
    if name == INDICATORS.name:
        return (
            "SELECT i.month, i.indicator, i.dimension, d.unit, "
            f"CASE WHEN d.unit <> '{DURATION_UNIT}' THEN CAST(i.value AS BIGINT) END AS count, "
            f"CASE WHEN d.unit = '{DURATION_UNIT}' THEN i.value END AS months "
            f"FROM {home}.marts.indicators AS i "
            f"LEFT JOIN {home}.marts.indicator_definitions AS d USING (indicator)"
        )
    return f"SELECT * FROM {home}.{name}"


def _check_counts(conn: duckdb.DuckDBPyConnection) -> None:
    """A count that is not a whole number, or an indicator without a unit, is a bug upstream:
    never rounded away silently."""
    (bad,) = conn.execute(
        "SELECT count(*) FROM marts.indicators AS i "
        "LEFT JOIN marts.indicator_definitions AS d USING (indicator) "
        f"WHERE d.unit IS NULL OR (d.unit <> '{DURATION_UNIT}' AND i.value <> round(i.value))"
    ).fetchall()[0]
    if bad:
        raise ValueError(
            f"{bad} row(s) of marts.indicators have no unit in marts.indicator_definitions or a "
            "count that is not a whole number: the snapshot was not written"
        )


def publish_snapshot(conn: duckdb.DuckDBPyConnection, target: Path) -> dict[str, int]:
    """Copies SNAPSHOT_TABLES that exist into `target` (replaced atomically), with their
    comments, and the code labels; rows per table."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    existing = set(warehouse.existing_tables(conn))
    if {"marts.indicators", "marts.indicator_definitions"} <= existing:
        _check_counts(conn)
    (home,) = conn.execute("SELECT current_database()").fetchall()[0]
    home = f'"{home}"'
    counts = {}
    conn.execute(
        f"ATTACH {warehouse.quoted(str(partial))} AS snapshot (STORAGE_VERSION '{STORAGE_VERSION}')"
    )
    try:
        conn.execute("USE snapshot")  # tables and comments are created as declared, here
        for spec in snapshot_tables():
            if spec is CODE_LABELS:
                conn.register("_code_labels", code_tables())
                source = "SELECT * FROM _code_labels"
            elif spec.name in existing:
                source = _select(spec.name, home)
            else:
                continue
            warehouse.create(conn, spec)
            conn.execute(f"INSERT INTO {spec.name} BY NAME {source}")
            counts[spec.name] = conn.execute(f"SELECT count(*) FROM {spec.name}").fetchall()[0][0]
        conn.unregister("_code_labels")
    finally:
        conn.execute(f"USE {home}")
        conn.execute("DETACH snapshot")
    os.chmod(partial, 0o440)  # household-level data: the project team only
    os.replace(partial, target)
    return counts


# the indicators as a spreadsheet reads them: French labels, one figure column per kind
INDICATORS_IN_FRENCH = f"""
SELECT strftime(i.month, '%Y-%m') AS mois,
       i.indicator AS indicateur,
       li.libelle AS libelle_indicateur,
       split_part(i.dimension, '=', 1) AS dimension,
       split_part(i.dimension, '=', 2) AS modalite,
       coalesce(lm.libelle, '{TOTAL_LABEL}') AS libelle_modalite,
       i.count AS effectif,
       i.months AS duree_mois
FROM marts.indicators AS i
LEFT JOIN marts.code_labels AS li ON li.family = 'indicator' AND li.code = i.indicator
LEFT JOIN marts.code_labels AS lm
       ON lm.family = split_part(i.dimension, '=', 1) AND lm.code = split_part(i.dimension, '=', 2)
ORDER BY i.month, i.indicator, i.dimension NULLS FIRST
"""


def export_xlsx(snapshot: Path, out: Path, sql: str = INDICATORS_IN_FRENCH) -> int:
    """Writes the result of `sql` on the snapshot to the workbook `out` (owner-only: a query
    may return household-level rows); the number of rows written."""
    with warehouse.read_only(snapshot) as conn:
        frame = conn.sql(sql).pl()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    out.touch(mode=0o600)
    with workbook(out) as book:
        frame.write_excel(workbook=book, worksheet="synchro", autofit=True)
    return frame.height


def refresh_snapshot(conn: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """After a change made outside the monthly run (retention, key rotation): the analysts'
    copy, if there is one, rewritten from the warehouse at once, and the published tree given
    to its group."""
    if settings.snapshot_path.exists():
        publish_snapshot(conn, settings.snapshot_path)
    share_published(settings)
