"""The rules a staged source-month is judged by, and the figures reported with it.

Computed from what the warehouse holds for the month (after a write, or when an identical
re-delivery left it as it was): schema, rejection rate, column drift, volume. The staged rows
were validated by the source's Pandera model before they were written, and `lineage.files`
records which model: `schema_valid` validates them again only when the model has changed since.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandera.polars as pa
import polars as pl

from synchro_dagster import warehouse
from synchro_dagster.checks import CheckOutcome
from synchro_dagster.ingest.errors import FileRejected
from synchro_dagster.ingest.stage import StagedMonth, model_version
from synchro_dagster.sources.spec import Source

STAGING_CHECKS = ("schema_valid", "rejection_rate", "column_drift", "volume")
TABLE_CHECKS = ("column_in_dataframe", "column_in_schema")  # their failure case is a column name
VOLUME_TOLERANCE = 0.5  # a month outside ±50 % of the trailing mean is worth a look
TRAILING_MONTHS = 3
VOLUME_MIN_ROWS = 30  # below this trailing mean, month-to-month swings say nothing


def stored_month(
    conn: duckdb.DuckDBPyConnection, source_id: str, month: date
) -> tuple[int | None, pl.DataFrame | None]:
    """The number of the month's staged rows and its quarantined rows, as stored (None: the
    table does not exist)."""
    present = set(warehouse.existing_tables(conn))
    staging, quarantine = f"staging.{source_id}", f"quarantine.{source_id}"
    return (
        conn.execute(f"SELECT count(*) FROM {staging} WHERE month = ?", [month]).fetchall()[0][0]
        if staging in present
        else None,
        conn.sql(f"SELECT * FROM {quarantine} WHERE month = ?", params=[month]).pl()
        if quarantine in present
        else None,
    )


def month_figures(
    staged: int, quarantine: pl.DataFrame | None, rows_read: int
) -> dict[str, object]:
    """Counts and rates of a staged source-month, quarantine reasons counted (no row shown)."""
    quarantined = quarantine.height if quarantine is not None else 0
    reasons = (
        quarantine.explode("reasons").group_by("reasons").len().sort("reasons")
        if quarantined
        else None
    )
    return {
        "dagster/row_count": staged,
        "rows_read": rows_read,
        "rows_quarantined": quarantined,
        "rejection_rate": round(quarantined / rows_read, 4) if rows_read else 0.0,
        "quarantine_reasons": {r: n for r, n in reasons.iter_rows()} if reasons is not None else {},
    }


def staging_checks(
    conn: duckdb.DuckDBPyConnection, source: Source, month: date, max_rejection_rate: float
) -> list[CheckOutcome]:
    """The four checks, from what the warehouse now holds for the month."""
    staged, _ = stored_month(conn, source.id, month)
    if staged is None:
        return [CheckOutcome(name, True, {"note": "no data yet"}) for name in STAGING_CHECKS]
    current, before = delivery_history(conn, source.id, month)
    return [
        stored_schema_valid(conn, source, month, staged, current),
        rejection_rate(current, max_rejection_rate),
        column_drift(current, before),
        volume(current, before),
    ]


def delivery_history(
    conn: duckdb.DuckDBPyConnection, source_id: str, month: date
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The source's deliveries by month as `lineage.files` holds them — rows read, staged,
    quarantined, canonical columns found, unused columns (position and keyed hash) — for
    `month` and for the months before it."""
    files = conn.sql(
        "SELECT month, sum(rows_read) AS rows_read, sum(rows_staged) AS rows_staged, "
        "sum(rows_quarantined) AS rows_quarantined, "
        "list_sort(list_distinct(flatten(list(columns_found)))) AS columns, "
        "list_sort(list_distinct(flatten(list(columns_unmapped)))) AS unmapped, "
        "list_distinct(list(coalesce(model_version, ''))) AS model_versions "
        "FROM lineage.files WHERE source = ? AND month <= ? GROUP BY month ORDER BY month",
        params=[source_id, month],
    ).pl()
    return files.filter(pl.col("month") == month), files.filter(pl.col("month") < month)


def stored_schema_valid(
    conn: duckdb.DuckDBPyConnection,
    source: Source,
    month: date,
    staged: int,
    current: pl.DataFrame,
) -> CheckOutcome:
    """`schema_valid` of the month as stored: its rows were validated by the model before they
    were written (rights and retention since only delete rows or replace tokens); they are read
    and validated again only when `lineage.files` records another model, or none, with the
    columns declared since they were written as null (as linking adds them: `as_declared`)."""
    version = model_version(source.model)
    if current.height and current["model_versions"][0].to_list() == [version]:
        return CheckOutcome(
            "schema_valid", True, {"rows": staged, "validated": f"when staged (model {version})"}
        )
    relation = warehouse.as_declared(conn, f"staging.{source.id}")
    rows = conn.sql(f"SELECT * FROM {relation} WHERE month = ?", params=[month]).pl()
    return schema_valid(rows, source)


def schema_valid(staged: pl.DataFrame, source: Source) -> CheckOutcome:
    try:
        source.model.validate(staged, lazy=True)
    except pa.errors.SchemaErrors as exc:
        failures = (
            exc.failure_cases.with_columns(  # a column missing or unknown is named, not the model
                column=pl.when(pl.col("check").is_in(TABLE_CHECKS))
                .then(pl.col("failure_case"))
                .otherwise(pl.col("column"))
            )
            .group_by("column", "check", maintain_order=True)
            .len()
        )
        return CheckOutcome(
            "schema_valid",
            False,
            {"failures": [f"{c}: {k} ({n})" for c, k, n in failures.iter_rows()]},
        )
    return CheckOutcome("schema_valid", True, {"rows": staged.height})


def rows_allowed(rows_read: int, max_rejection_rate: float) -> float:
    """Quarantined (or repeated) rows a delivery may hold: one broken row in a short list is
    no trend."""
    return max(1.0, max_rejection_rate * rows_read)


def rejection_rate(current: pl.DataFrame, max_rejection_rate: float) -> CheckOutcome:
    read = int(current["rows_read"][0]) if current.height else 0
    quarantined = int(current["rows_quarantined"][0]) if current.height else 0
    rate = quarantined / read if read else 0.0
    allowed = rows_allowed(read, max_rejection_rate)
    return CheckOutcome(
        "rejection_rate",
        quarantined <= allowed,
        {
            "rejection_rate": round(rate, 4),
            "threshold": max_rejection_rate,
            "rows_quarantined": quarantined,
            "rows_allowed": int(allowed),
            "rows_read": read,
        },
    )


def column_drift(current: pl.DataFrame, before: pl.DataFrame) -> CheckOutcome:
    if not (current.height and before.height):
        return CheckOutcome("column_drift", True, {"note": "no previous delivery to compare"})
    now, previous = set(current["columns"][0]), set(before["columns"][-1])
    return CheckOutcome(
        "column_drift",
        now == previous,
        {"columns_added": sorted(now - previous), "columns_missing": sorted(previous - now)},
        severity="WARN",
    )


def volume(current: pl.DataFrame, before: pl.DataFrame) -> CheckOutcome:
    trailing = before.tail(TRAILING_MONTHS)["rows_staged"]
    if not (current.height and trailing.len()):
        return CheckOutcome("volume", True, {"note": "no trailing months to compare"})
    mean = float(trailing.mean())
    staged = int(current["rows_staged"][0])
    ratio = staged / mean if mean else 1.0
    return CheckOutcome(
        "volume",
        abs(ratio - 1) <= VOLUME_TOLERANCE or mean < VOLUME_MIN_ROWS,
        {"rows_staged": staged, "trailing_mean": round(mean, 1), "ratio": round(ratio, 3)},
        severity="WARN",
    )


def refusal_outcome(refused: FileRejected) -> CheckOutcome:
    """What the UI's checks say of a refused delivery: too many unusable or repeated rows fail
    `rejection_rate`, any other file problem `schema_valid`; nothing was written."""
    rows = refused.problem in ("too_many_rejected_rows", "duplicate_rows")
    return CheckOutcome(
        "rejection_rate" if rows else "schema_valid",
        False,
        {
            "refused": refused.file,
            "problem": refused.problem,
            "column": refused.column or "",
            "detail": refused.detail,
            "what to do": refused.fix,
            "note": "delivery refused as a whole: staging keeps the previous delivery",
        },
    )


# ------------------------------------------------------------------ before anything is written
_PROVENANCE = ("file_sha256", "file_name", "row_number")
_NAME_TITLE_FIELDS = ("last_name", "full_name", "first_name")  # what no_identity is about


def refuse_unusable(result: StagedMonth, max_rejection_rate: float) -> None:
    """Judges a staged delivery before it is written: one that would fail `rejection_rate`, or
    whose rows repeat other rows of the delivery, is refused as a whole (`FileRejected`), so
    that the source-month's previous state stays."""
    allowed = rows_allowed(result.rows_read, max_rejection_rate)
    names = {f.sha256: f.file_name for f in result.files}
    repeats = repeated_rows(result.staged)
    if repeats.height and repeats["rows"].sum() > allowed:
        sha, first, rows = repeats.row(0)
        where = "earlier rows of the same file" if first == sha else f"rows of {names[first]}"
        raise FileRejected(
            names[sha],
            "duplicate_rows",
            f"{rows} of its rows repeat {where} exactly (every field the same), more than the "
            f"{allowed:.0f} accepted",
            "send each row once; if a corrected file replaces an older one, remove the older "
            "one from the folder",
        )
    if result.quarantine.height <= allowed:
        return
    by_file = result.quarantine.group_by("file_name").len().sort(["len", "file_name"])
    file, _ = by_file.row(-1, named=False)
    reasons = (
        result.quarantine.filter(pl.col("file_name") == file)
        .explode("reasons")
        .group_by("reasons")
        .len()
        .sort(["len", "reasons"], descending=[True, False])
    )
    reason, count = reasons.row(0)
    report = next(f for f in result.files if f.file_name == file)
    title = _reason_column(reason, report.titles)
    rate = result.quarantine.height / result.rows_read
    raise FileRejected(
        file,
        "too_many_rejected_rows",
        f"{result.quarantine.height} of {result.rows_read} rows ({rate:.0%}) could not be used, "
        f"more than the {max_rejection_rate:.0%} allowed; the most frequent reason, on {count} "
        f"rows, is {reason}. Nothing of the delivery was written: the previous one stays",
        f"correct column « {title} » throughout the file and send the whole file again"
        if title
        else "correct the rows and send the whole file again",
        column=title,
        reason=reason,
    )


def _reason_column(reason: str, titles: dict[str, str]) -> str | None:
    """The partner's title of the column a row reason is about."""
    base, _, concerned = reason.partition(":")
    if base == "no_identity":
        return next((titles[f] for f in _NAME_TITLE_FIELDS if f in titles), None)
    field = concerned.partition(":")[0] if base == "rule" else concerned
    return titles.get(field)


def repeated_rows(staged: pl.DataFrame) -> pl.DataFrame:
    """Staged rows identical, provenance aside, to an earlier row of the delivery, counted by
    file and file of the first occurrence (file_sha256, first_sha256, rows), most first."""
    values = [c for c in staged.columns if c not in _PROVENANCE]
    same = pl.struct(values).hash()
    return (
        staged.with_columns(pl.col("file_sha256").first().over(same).alias("first_sha256"))
        .filter(~pl.struct(values).is_first_distinct())
        .group_by("file_sha256", "first_sha256")
        .agg(pl.len().alias("rows"))
        .sort(["rows", "file_sha256"], descending=[True, False])
        .select("file_sha256", "first_sha256", "rows")
    )
