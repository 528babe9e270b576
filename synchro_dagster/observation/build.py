"""One month of observation: household-months, inflows and outflows, provenance.

Plain Python + the SQL files beside it (one per table, each opening with its grain). The
month is computed with identity as known at the end of the month, from the records of the
months of its inactivity window (typed.sql) and, of the months before, only the few per person
that can still decide a figure (kept.sql: the earliest record, the latest exit, composition,
age band…). Those are kept in `core.kept_evidence` from one month to the next, one month more
each month, so that a month's cost follows the households of its window, not the length of
the history; they are drawn again from staging when what they came from changed. The month is
written to `core.*` by `warehouse.replace_month`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl

from synchro_dagster import warehouse
from synchro_dagster.ingest.canonical import month_end
from synchro_dagster.observation.ids import current_ids
from synchro_dagster.sources import all_sources

SQL_DIR = Path(__file__).parent
CORE_TABLES = ("core.household_months", "core.household_events", "core.provenance")
KEPT = "core.kept_evidence"
STAGED_COLUMNS = (
    "source || ':' || file_sha256 || ':' || row_number AS record_key, source, month, "
    "file_sha256, row_number, record_token, sex, age_band, composition, household_size, situation, "
    "event_date, need_type, need_status, need_since, request_fulfilled, programme, entry_date, "
    "exit_date, exit_destination"
)


@dataclass(frozen=True)
class Window:
    """The dates one month is computed with (docs/domain.md §4)."""

    month: date
    inactivity_days: int = 90
    lookback_months: int = 24
    retention_months: int = 24  # persons unnamed this long before the month take no part
    known_at: date | None = None  # identity as known at the end of this month (None: `month`)

    def params(self) -> dict[str, date]:
        end = month_end(self.month)
        start = end - timedelta(days=self.inactivity_days)
        back = self.month.year * 12 + self.month.month - 1 - self.lookback_months
        return {
            "month": self.month,
            "month_end": end,
            "previous_month": (self.month - timedelta(days=1)).replace(day=1),
            "window_start": start,
            "window_first_month": start.replace(day=1),
            "lookback_start": date(back // 12, back % 12 + 1, 1),
        }


def sql(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def run_sql(conn: duckdb.DuckDBPyConnection, text: str, params: dict[str, date]) -> None:
    """Runs a SQL file with the named parameters it uses."""
    used = set(re.findall(r"\$(\w+)", text))
    conn.execute(text, {k: v for k, v in params.items() if k in used})


def compute_month(
    conn: duckdb.DuckDBPyConnection,
    window: Window,
    previous: str = "core.household_months",
    ids: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame] | None = None,
) -> None:
    """Builds the month's tables as temporary `_household_months`, `_household_events`,
    `_provenance` (and `_evidence`), without writing anything permanent. The flows are counted
    against last month's household-months in `previous` (the stored ones, or a revision's).
    `ids`: `current_ids` as of `window.known_at`, when the caller has them already (a revision
    reads every month with the same)."""
    persons, household_map, members = ids or current_ids(
        conn, window.known_at or window.month, window.retention_months
    )
    ranks = pl.DataFrame(
        [(s.id, s.situation_rank) for s in all_sources().values()],
        schema={"source": pl.String, "situation_rank": pl.Int64},
        orient="row",
    )
    broad = pl.DataFrame(
        [
            (s.id, situation, one)
            for s in all_sources().values()
            for situation, precise in s.broad_situations.items()
            for one in precise
        ],
        schema={"source": pl.String, "situation": pl.String, "precise": pl.String},
        orient="row",
    )
    frames = {
        "_persons_now": persons,
        "_household_map": household_map,
        "_members": members,
        "_source_rank": ranks,
        "_broad_situations": broad,
    }
    for name, frame in frames.items():
        conn.register("_frame", frame)
        conn.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM _frame")
        conn.unregister("_frame")
    params = window.params()
    warehouse.ensure(conn, "core.household_months")
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE _previous_stock AS SELECT household_id FROM "
        f"{previous} WHERE month = ? AND status = 'active'",
        [params["previous_month"]],
    )
    union, staged = warehouse.staged_history(conn, STAGED_COLUMNS, window.month)
    kept_records(conn, union, staged, params["window_first_month"])
    conn.execute(
        f"CREATE OR REPLACE TEMP TABLE _staged AS SELECT * FROM ({union}) WHERE month >= ?",
        [*staged, params["window_first_month"]],
    )
    run_sql(conn, sql("typed"), params)
    for name in ("evidence", "household_months", "household_events", "provenance"):
        run_sql(conn, sql(name), params)


def kept_inputs(conn: duckdb.DuckDBPyConnection, before: date) -> dict[date, str]:
    """Per month delivered before `before`: what its records are, as one text (its staged rows,
    its links and the sum of their person ids, the ids retired that month, the limitations in
    force, the source ranks). A month's records changed without the month being observed
    again (which a re-delivery and a rights request both do) change one of these."""
    tables = warehouse.existing_tables(conn, "staging")
    counts = " UNION ALL ".join(
        f"SELECT month, count(*) AS n FROM {t} WHERE month < $before GROUP BY month" for t in tables
    )
    staged = (
        conn.execute(
            f"SELECT month, sum(n) FROM ({counts}) GROUP BY month", {"before": before}
        ).fetchall()
        if tables
        else []
    )
    per_month = {
        table: {
            month: f"{n}/{total}"
            for month, n, total in conn.execute(
                f"SELECT month, count(*), sum({column}) FROM identity.{table} WHERE month < ? "
                "GROUP BY month",
                [before],
            ).fetchall()
        }
        for table, column in (("person_links", "person_id"), ("person_aliases", "alias_id"))
    }
    limits = (
        conn.execute(
            "SELECT count(*), sum(request_id) FROM privacy.subjects WHERE action = 'limit'"
        ).fetchall()[0]
        if "privacy.subjects" in warehouse.existing_tables(conn, "privacy")
        else (0, None)
    )
    ranks = " ".join(f"{s.id}={s.situation_rank}" for s in all_sources().values())
    common = f"limits {limits[0]}/{limits[1]}; ranks {ranks}"
    return {
        m: f"staged {n}; "
        + "; ".join(f"{t} {rows.get(m, '0/0')}" for t, rows in per_month.items())
        + f"; {common}"
        for m, n in staged
    }


def fingerprint(inputs: dict[date, str], until: date) -> str:
    """The inputs of the months before `until`, in one short text."""
    text = "\n".join(f"{m}: {inputs[m]}" for m in sorted(inputs) if m < until)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def kept_records(
    conn: duckdb.DuckDBPyConnection, union: str, staged: list[date], first: date
) -> None:
    """`_kept`: the records of the months delivered before `first` (the window's first month)
    that can still decide a figure (kept.sql). They follow from the latest kept records known
    for a first month up to `first` whose inputs have not changed since — a generation of
    `core.kept_evidence`, or the `_kept` this connection computed last (a revision computes its
    windows in order) — and the records of the months between; with none, from staging alone.
    `_kept_until` says what `_kept` stands for: `until` (`first`), `inputs` (the fingerprint of
    what it was drawn from) and `stored`, the generation of `core.kept_evidence` it is, if it is
    one (`store_kept` has nothing to write then)."""
    warehouse.ensure(conn, KEPT)
    inputs = kept_inputs(conn, first)
    known = conn.execute(f"SELECT DISTINCT until, inputs, kept_for FROM {KEPT}").fetchall()
    if conn.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = '_kept_until'"
    ).fetchall()[0][0]:
        known += conn.execute("SELECT until, inputs, NULL FROM _kept_until").fetchall()
    usable = sorted(  # the latest last; of two as late, a stored one
        (until, kept_for is not None, kept_for)
        for until, stored, kept_for in known
        if until <= first and stored == fingerprint(inputs, until)
    )
    until, _, kept_for = usable[-1] if usable else (None, False, None)
    generation = (  # no token: a record's 115 request is not read once out of the window
        f"SELECT * EXCLUDE (month, person_id, until, inputs, kept_for), month AS delivery_month, "
        f"person_id AS link_person_id, NULL::VARCHAR AS record_token FROM {KEPT} "
        "WHERE kept_for = $kept_for"
    )
    earlier = generation if kept_for else "SELECT * FROM _kept"
    if until == first and kept_for:
        run_sql(conn, f"CREATE OR REPLACE TEMP TABLE _kept AS {earlier}", {"kept_for": kept_for})
    elif until != first:  # with the records of the months since (all, with nothing usable)
        conn.execute(
            f"CREATE OR REPLACE TEMP TABLE _staged AS SELECT * FROM ({union}) "
            "WHERE month >= ? AND month < ?",
            [*staged, until or date.min, first],
        )
        run_sql(conn, sql("typed"), {})
        run_sql(
            conn,
            "CREATE OR REPLACE TEMP TABLE _kept_in AS SELECT * FROM _typed"
            + (f" UNION ALL BY NAME {earlier}" if until else ""),
            {"kept_for": kept_for},
        )
        run_sql(conn, sql("kept"), {})
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE _kept_until AS SELECT ?::DATE AS until, ? AS inputs, "
        "?::VARCHAR AS stored",
        [first, fingerprint(inputs, first), kept_for if until == first else None],
    )


def store_kept(
    conn: duckdb.DuckDBPyConnection,
    kept_for: str,
    kept: str = "_kept",
    until: str = "_kept_until",
) -> None:
    """Replaces the generation `kept_for` of `core.kept_evidence` ("month", "revision") with
    the kept records `kept` and what `until` says they stand for, unless they are that
    generation already."""
    (stored,) = conn.execute(f"SELECT stored FROM {until}").fetchall()[0]
    if stored == kept_for:
        return
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(f"DELETE FROM {KEPT} WHERE kept_for = ?", [kept_for])
        conn.execute(
            f"INSERT INTO {KEPT} BY NAME SELECT k.* EXCLUDE (delivery_month, link_person_id, "
            "record_token), k.delivery_month AS month, k.link_person_id AS person_id, u.until, "
            f"u.inputs, ? AS kept_for FROM {kept} AS k, {until} AS u",
            [kept_for],
        )
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise


def write_month(conn: duckdb.DuckDBPyConnection, month: date) -> dict[str, int]:
    """Replaces the month in `core.*` with the temporary tables, and the generation "month" of
    `core.kept_evidence` with `_kept`; rows written per core table ("household_months"…)."""
    counts = warehouse.replace_month(conn, month, {t: "_" + t.split(".")[1] for t in CORE_TABLES})
    store_kept(conn, "month")
    return {name.split(".")[1]: n for name, n in counts.items()}


def observe_month(conn: duckdb.DuckDBPyConnection, window: Window) -> dict[str, int]:
    """Computes and writes one month; rows written per core table."""
    compute_month(conn, window)
    return write_month(conn, window.month)
