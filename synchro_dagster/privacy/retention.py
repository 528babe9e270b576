"""Retention: person-level data of persons no partner named for `retention_months`, and partner
files `landing_retention_days` after their ingestion, deleted; published aggregates kept.

A person's last contact is the latest month a partner's delivery named them (identity.horizon).
A run on day D keeps the persons named in the `retention_months` months up to the last complete
month before D, and deletes the others everywhere they are: their staged records, their links,
their households' rows when no member is left, the provenance of their records, corrections
that no longer name anyone, and quarantined rows of months before the kept ones. The figures
(`marts.indicators`, published files) stay. Every month is computed on exactly the persons a
run would keep at that time, so a run never changes a figure computed after it.

A partner file goes once its source-month was ingested more than `landing_retention_days` ago
and computed since, unless a file of the same source-month waits to be staged (re-staging reads
every file of the folder). Folders stay: the month is still a partition, and a run of it finds
no file and leaves its staged rows as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

import duckdb

from synchro_dagster import warehouse
from synchro_dagster.identity.horizon import forgotten_links, months_before
from synchro_dagster.identity.persons import record_id_sequences
from synchro_dagster.ingest.stage import delivered_files, sha256_of
from synchro_dagster.privacy import audit
from synchro_dagster.publish.snapshot import refresh_snapshot
from synchro_dagster.settings import Settings
from synchro_dagster.sources import all_sources

RECORD_KEY = "{t}.source || ':' || {t}.file_sha256 || ':' || {t}.row_number"


@dataclass
class RetentionRun:
    today: date
    retention_months: int
    persons: int = 0
    households: int = 0
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows deleted
    files: list[Path] = field(default_factory=list)  # landing files deleted

    @property
    def kept_from(self) -> date:
        """The first of the `retention_months` months up to the last complete one: a person
        named in one of them is kept."""
        return months_before(self.today.replace(day=1), self.retention_months)

    def counts(self) -> dict[str, int | str]:
        """What the run did, in numbers (the audit trail and Dagster metadata): no identity."""
        return {
            "today": f"{self.today:%Y-%m-%d}",
            "kept_from": f"{self.kept_from:%Y-%m}",
            "persons": self.persons,
            "households": self.households,
            "landing_files": len(self.files),
            **{name: n for name, n in sorted(self.rows.items()) if n},
        }

    def lines(self) -> list[str]:
        deleted = [f"  {name:<34} {n:>8,} rows" for name, n in sorted(self.rows.items()) if n]
        return [
            f"Retention on {self.today:%Y-%m-%d}: persons named since {self.kept_from:%Y-%m} "
            f"kept; {self.persons} person(s) and {self.households} household(s) deleted.",
            *(deleted or ["  no row deleted"]),
            f"  {len(self.files)} landing file(s) deleted.",
        ]


# how each person-level table loses the forgotten persons' rows; `_forgotten` holds their links,
# `_gone_households` the households none of whose members is kept; run in this order
def _staging(name: str) -> str:
    key = RECORD_KEY.format(t="s")
    return (
        f"DELETE FROM {name} AS s WHERE {key} IN (SELECT record_key FROM _forgotten) "
        f"OR (s.month < $kept_from AND {key} NOT IN (SELECT record_key FROM identity.person_links))"
    )


RULES: dict[str, Callable[[str], str]] = {
    "staging.*": _staging,
    "quarantine.*": lambda name: f"DELETE FROM {name} WHERE month < $kept_from",
    "core.provenance": lambda name: (
        f"DELETE FROM {name} AS p WHERE household_id IN (SELECT household_id FROM "
        f"_gone_households) OR {RECORD_KEY.format(t='p')} IN (SELECT record_key FROM _forgotten)"
    ),
    "core.household_months": lambda name: (
        f"DELETE FROM {name} WHERE household_id IN (SELECT household_id FROM _gone_households)"
    ),
    "core.household_events": lambda name: (
        f"DELETE FROM {name} WHERE household_id IN (SELECT household_id FROM _gone_households)"
    ),
    "core.kept_evidence": lambda name: (
        f"DELETE FROM {name} WHERE (month, person_id) IN (SELECT (month, person_id) FROM "
        "_forgotten)"
    ),
    "identity.household_aliases": lambda name: (
        f"DELETE FROM {name} WHERE alias_id IN (SELECT household_id FROM _gone_households) "
        "OR household_id IN (SELECT household_id FROM _gone_households)"
    ),
    "identity.households": lambda name: (
        f"DELETE FROM {name} WHERE (month, person_id) IN (SELECT (month, person_id) FROM "
        "_forgotten)"
    ),
    "identity.person_aliases": lambda name: (
        f"DELETE FROM {name} WHERE alias_id IN (SELECT person_id FROM _forgotten) "
        "OR person_id IN (SELECT person_id FROM _forgotten)"
    ),
    "identity.person_links": lambda name: (
        f"DELETE FROM {name} WHERE record_key IN (SELECT record_key FROM _forgotten)"
    ),
    # a correction is kept while a staged record still carries one of its two spellings
    "identity.corrections": lambda name: (
        f"DELETE FROM {name} AS c WHERE c.created_at < $kept_from AND NOT EXISTS ("
        "SELECT 1 FROM _names_kept AS k WHERE k.tok_name IN (c.token_a, c.token_b))"
    ),
    # an objection or a limitation lasts (it must keep dropping or freezing later deliveries);
    # a rectification goes with the last record it corrects
    "privacy.subjects": lambda name: (
        f"DELETE FROM {name} AS r WHERE r.action = 'rectify' AND r.created_at < $kept_from "
        "AND NOT EXISTS (SELECT 1 FROM _names_kept AS k WHERE k.tok_name = r.tok_name "
        "OR k.record_token = r.record_token)"
    ),
}


def rule_for(table: str) -> Callable[[str], str]:
    """The deletion of a person-level table; a new personal table must get one here."""
    schema = table.split(".")[0]
    rule = RULES.get(table) or RULES.get(f"{schema}.*")
    if rule is None:
        raise LookupError(
            f"{table} holds person-level data but retention has no rule for it: add one to "
            "synchro_dagster/privacy/retention.py RULES"
        )
    return rule


def _order(table: str) -> int:
    """In RULES' order: staging first (a record never linked is found by its missing link),
    corrections and requests after staging (they follow the records left)."""
    order = [*RULES]
    schema = table.split(".")[0]
    return order.index(table if table in RULES else f"{schema}.*")


def purge(conn: duckdb.DuckDBPyConnection, run: RetentionRun) -> None:
    """Deletes the forgotten persons' rows from every person-level table present, in one
    transaction (the caller's audit event inside it); fills `run`."""
    present = set(warehouse.existing_tables(conn))
    tables = sorted((t.name for t in warehouse.personal_tables() if t.name in present), key=_order)
    rules = {name: rule_for(name) for name in tables}
    record_id_sequences(conn)  # a deleted id is never given again (creates identity's tables)
    # the persons the next month's computation ignores, judged on every link held
    forgotten = forgotten_links(conn, run.today.replace(day=1), run.retention_months, date.max)
    conn.register("_forgotten_frame", forgotten)
    conn.execute("CREATE OR REPLACE TEMP TABLE _forgotten AS SELECT * FROM _forgotten_frame")
    conn.unregister("_forgotten_frame")
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE _gone_households AS SELECT h.household_id "
        "FROM identity.households AS h LEFT JOIN (SELECT DISTINCT month, person_id, true AS gone "
        "FROM _forgotten) AS f USING (month, person_id) GROUP BY h.household_id "
        "HAVING count(f.gone) = count(*)"
    )
    run.persons = conn.execute(
        "SELECT count(DISTINCT current_person_id) FROM _forgotten"
    ).fetchall()[0][0]
    run.households = conn.execute("SELECT count(*) FROM _gone_households").fetchall()[0][0]
    params = {"kept_from": run.kept_from}
    for name in tables:
        if name in ("identity.corrections", "privacy.subjects"):  # after staging's deletions
            names = " UNION ".join(
                f"SELECT tok_name, record_token FROM {t}"
                for t in sorted(present)
                if t.startswith("staging.")
            )
            empty = "SELECT NULL AS tok_name, NULL AS record_token"
            conn.execute(f"CREATE OR REPLACE TEMP TABLE _names_kept AS {names or empty}")
        sql = rules[name](name)
        (before,) = conn.execute(f"SELECT count(*) FROM {name}").fetchall()[0]
        conn.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql})
        (after,) = conn.execute(f"SELECT count(*) FROM {name}").fetchall()[0]
        run.rows[name] = before - after


def expired_landing_files(
    conn: duckdb.DuckDBPyConnection, settings: Settings, today: date
) -> list[Path]:
    """Partner files whose source-month was ingested `landing_retention_days` before `today`
    and computed since, each still the file ingested (same sha256), with no other file of the
    source-month waiting to be staged."""
    present = set(warehouse.existing_tables(conn))
    if not {"lineage.files", "marts.indicators"} <= present:
        return []
    deadline = datetime.combine(today, time()) - timedelta(days=settings.landing_retention_days)
    computed = {
        m for (m,) in conn.execute("SELECT DISTINCT month FROM marts.indicators").fetchall()
    }
    ingested = conn.execute(
        "SELECT source, month, list((file_name, sha256)), max(loaded_at) FROM lineage.files "
        "GROUP BY source, month ORDER BY month, source"
    ).fetchall()
    sources = all_sources()
    expired = []
    for source, month, files, loaded_at in ingested:
        if loaded_at > deadline or month not in computed or source not in sources:
            continue
        landing = settings.landing_dir
        delivered = delivered_files(landing, sources[source], month)
        found = {(p.relative_to(landing).as_posix(), sha256_of(p)) for p in delivered}
        if found and found <= {tuple(f) for f in files}:
            expired += delivered
    return expired


def run_retention(settings: Settings, today: date) -> RetentionRun:
    """Deletes what the rule no longer allows (one transaction, recorded in the audit trail),
    then the expired landing files, and refreshes the analysts' snapshot if there is one."""
    run = RetentionRun(today, settings.retention_months)
    with warehouse.connect(settings.warehouse_path) as conn:
        run.files = expired_landing_files(conn, settings, today)
        conn.execute("BEGIN TRANSACTION")
        try:
            purge(conn, run)
            audit.record(conn, settings, "retention", run.counts())
            conn.execute("COMMIT")
        except Exception:
            conn.execute("ROLLBACK")
            raise
        for path in run.files:
            path.unlink()
        refresh_snapshot(conn, settings)
    return run
