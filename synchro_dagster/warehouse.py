"""The DuckDB warehouse: every table's DDL, the one transactional write, and the ways in.

Each stage writes a month with `replace_month` (delete the month, insert it, in one
transaction: a re-run gives the same tables, a failure leaves the previous state, a reader
never sees half a month). Identity and observation read the staged history with
`staged_history`; sensors, the CLI and analysts open the file with `read_only`. `table()`
knows every table: its grain, its typed columns and, for retention and rights requests,
the columns that identify a person or a household (`personal_tables()`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from synchro_dagster.sources import all_sources


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # DuckDB type
    comment: str = ""
    constraint: str = ""  # NOT NULL, DEFAULT …, CHECK …


@dataclass(frozen=True)
class Table:
    name: str  # schema.table
    grain: str
    columns: tuple[Column, ...]
    subject: tuple[str, ...] = ()  # columns that identify a person or a household
    tokens: tuple[str, ...] = ()  # columns of keyed tokens (space-separated): a rotation re-keys
    by_month: bool = True  # False: the whole table is replaced at each write
    month_column: str = "month"  # the month a write replaces (when `by_month`)
    append_only: bool = False  # rows are only ever inserted: no write replaces or deletes them
    meaning: str = ""  # what the rows say and why the table exists, after its grain

    @property
    def description(self) -> str:
        """Grain and meaning: the table's DuckDB comment, its Dagster description, the snapshot's
        comment — one text."""
        return f"Grain: {self.grain}. {self.meaning}".strip()

    @property
    def schema(self) -> str:
        return self.name.split(".")[0]

    @property
    def personal(self) -> bool:
        """Holds person-level (pseudonymised) data: retention and rights requests reach it."""
        return bool(self.subject)

    def ddl(self) -> str:
        columns = ",\n    ".join(f"{c.name} {c.type} {c.constraint}".rstrip() for c in self.columns)
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n    {columns}\n)"


def _c(name: str, kind: str, comment: str = "", constraint: str = "") -> Column:
    return Column(name, kind, comment, constraint)


MONTH = _c("month", "DATE", "first day of the month", "NOT NULL")
_AGE_BANDS = ("0_17", "18_24", "25_34", "35_44", "45_54", "55_64")

_TABLES = (
    Table(
        "lineage.key_fingerprint",
        "one row: the fingerprint of the pseudonymisation key the warehouse was built with",
        (
            _c(
                "fingerprint",
                "VARCHAR",
                "HMAC of a constant under the key: not the key",
                "NOT NULL",
            ),
            _c("recorded_at", "TIMESTAMP", "", "NOT NULL"),
        ),
        by_month=False,
    ),
    Table(
        "lineage.months_computed",
        "one row per month and stage (identity, marts): when the stage last computed the month",
        (
            MONTH,
            _c("stage", "VARCHAR", "identity | marts", "NOT NULL"),
            _c("run_id", "VARCHAR", "Dagster run that computed it"),
            _c(
                "computed_at",
                "TIMESTAMP",
                "when; null for a month computed before this table existed",
            ),
        ),
        meaning="What says a month is complete (synchro_dagster/months.py): the month after it "
        "is computed only once it is, so that months always go in order.",
    ),
    Table(
        "lineage.files",
        "one row per partner file ingested for a source-month",
        (
            _c("source", "VARCHAR", "partner source", "NOT NULL"),
            MONTH,
            _c("file_name", "VARCHAR", "relative to the landing directory", "NOT NULL"),
            _c("sha256", "VARCHAR", "of the file's bytes", "NOT NULL"),
            _c("size_bytes", "BIGINT", "size of the file", "NOT NULL"),
            _c("sheet", "VARCHAR", "the sheet read, for a workbook"),
            _c("header_row", "INTEGER", "row of the header line"),
            _c("rows_read", "INTEGER", "data rows under the header", "NOT NULL"),
            _c("rows_staged", "INTEGER", "rows kept in staging", "NOT NULL"),
            _c("rows_quarantined", "INTEGER", "rows set aside with reason codes", "NOT NULL"),
            _c("rows_ignored", "INTEGER", "blank, title, total and comment rows", "NOT NULL"),
            _c(
                "rows_opposed",
                "INTEGER",
                "rows of persons who objected (privacy.subjects), dropped: a count, no value",
                "DEFAULT 0",
            ),
            _c("columns_found", "VARCHAR[]", "canonical fields the header provided"),
            _c(
                "columns_unmapped",
                "VARCHAR[]",
                "partner columns the source does not use: position and keyed hash of the title",
            ),
            _c(
                "model_version",
                "VARCHAR",
                "hash of the source's Pandera model the staged rows were validated by; null for a "
                "file staged before it was recorded",
            ),
            _c("run_id", "VARCHAR", "Dagster run that ingested it"),
            _c("loaded_at", "TIMESTAMP", "when it was ingested", "NOT NULL"),
        ),
        meaning="Every file a partner delivered and what became of its rows; any figure traces "
        "to it through core.provenance (source, file_sha256).",
    ),
    Table(
        "lineage.refusals",
        "one row per source-month whose delivery was refused, naming the file that stopped it "
        "(the source-month's previous state stays; a later successful staging clears it)",
        (
            _c("source", "VARCHAR", "partner source", "NOT NULL"),
            MONTH,
            _c("file_name", "VARCHAR", "relative to the landing directory", "NOT NULL"),
            _c("sha256", "VARCHAR", "of the refused file's bytes", "NOT NULL"),
            _c(
                "problem",
                "VARCHAR",
                "file problem code (ingest/errors.py FILE_PROBLEMS)",
                "NOT NULL",
            ),
            _c("column_title", "VARCHAR", "the expected column concerned, if any"),
            _c("detail", "VARCHAR", "what was found, for the data engineer (no cell value)"),
            _c("run_id", "VARCHAR", "Dagster run that refused it"),
            _c("refused_at", "TIMESTAMP", "", "NOT NULL"),
        ),
    ),
    Table(
        "identity.person_links",
        "one row per staged record of the month, with its person id",
        (
            MONTH,
            _c("record_key", "VARCHAR", "source:file_sha256:row_number", "NOT NULL"),
            _c("source", "VARCHAR", "partner source", "NOT NULL"),
            _c(
                "person_id",
                "BIGINT",
                "sequential surrogate, never derived from identity",
                "NOT NULL",
            ),
        ),
        subject=("record_key", "person_id"),
    ),
    Table(
        "identity.person_aliases",
        "one row per person id retired in the month by a merge, and the id it went to",
        (
            MONTH,
            _c("alias_id", "BIGINT", "the retired id", "NOT NULL"),
            _c("person_id", "BIGINT", "the surviving id", "NOT NULL"),
        ),
        subject=("alias_id", "person_id"),
    ),
    Table(
        "identity.households",
        "one row per person seen in the month, with its household id",
        (
            MONTH,
            _c("household_id", "BIGINT", "sequential surrogate", "NOT NULL"),
            _c("person_id", "BIGINT", "", "NOT NULL"),
        ),
        subject=("household_id", "person_id"),
    ),
    Table(
        "identity.household_aliases",
        "one row per household id retired in the month, and the id it went to",
        (
            MONTH,
            _c("alias_id", "BIGINT", "the retired id", "NOT NULL"),
            _c("household_id", "BIGINT", "the surviving id", "NOT NULL"),
        ),
        subject=("alias_id", "household_id"),
    ),
    Table(
        "identity.churn",
        "one row per month, entity (person, household, record) and kind (created, merged, "
        "split; for records: ambiguous, ambiguous_tied, one_of_several)",
        (
            MONTH,
            _c("entity", "VARCHAR", "person | household | record", "NOT NULL"),
            _c(
                "kind",
                "VARCHAR",
                "created | merged | split | ambiguous (a record fitting several persons "
                "equally, joined to the one seen last) | ambiguous_tied (of those, seen last "
                "in the same month) | one_of_several (weak pairs to several namesakes, likely "
                "together: joined to the one seen last)",
                "NOT NULL",
            ),
            _c("n", "BIGINT", "ids or records concerned", "NOT NULL"),
        ),
    ),
    Table(
        "identity.models",
        "one row per month in which the linkage model was re-estimated on the territory",
        (
            MONTH,
            _c(
                "records",
                "BIGINT",
                "staged records of the history then (estimated on the latest 300,000)",
                "NOT NULL",
            ),
            _c("accepted", "BOOLEAN", "passed the sanity checks, so used", "NOT NULL"),
            _c("problems", "VARCHAR", "why it was refused (empty when accepted)", "NOT NULL"),
            _c("model", "VARCHAR", "Splink model JSON: m/u probabilities, no identity", "NOT NULL"),
        ),
    ),
    Table(
        "identity.id_sequences",
        "one row per entity (person, household): the highest id ever given, so that an id "
        "retention deleted is never given to someone else",
        (
            _c("entity", "VARCHAR", "person | household", "NOT NULL"),
            _c("last_id", "BIGINT", "", "NOT NULL"),
        ),
        by_month=False,
    ),
    Table(
        "identity.corrections",
        "one row per manual correction: two spellings (tok_name tokens) to link or keep apart",
        (
            _c("token_a", "VARCHAR", "tok_name of one spelling", "NOT NULL"),
            _c("token_b", "VARCHAR", "tok_name of the other", "NOT NULL"),
            _c("rule", "VARCHAR", "never | always", "NOT NULL CHECK (rule IN ('never', 'always'))"),
            _c("note", "VARCHAR", "why (no personal value)"),
            _c("created_at", "TIMESTAMP", "", "DEFAULT current_timestamp"),
        ),
        subject=("token_a", "token_b"),
        tokens=("token_a", "token_b"),
        by_month=False,
    ),
    Table(
        "core.household_months",
        "one row per household and month, for every household with a record dated in the "
        "inactivity window",
        (
            _c("month", "DATE", "first day of the month"),
            _c(
                "household_id",
                "BIGINT",
                "surrogate household id (identity as known at the month's end)",
            ),
            _c("status", "VARCHAR", "active | housed | deceased | left_territory | inactive"),
            _c("situation", "VARCHAR", "docs/domain.md §3 code; LOGE when housed"),
            _c("ethos", "VARCHAR", "ETHOS Light category of the stock (asylum apart)"),
            _c(
                "composition",
                "VARCHAR",
                "latest composition a source gave; else, for one person, from sex and age",
            ),
            _c("persons", "INTEGER", "declared household size, else persons linked"),
            *(
                _c(f"age_{band}", "INTEGER", f"members aged {band.replace('_', '-')}")
                for band in _AGE_BANDS
            ),
            _c("age_65_plus", "INTEGER", "members aged 65 or more"),
            _c("age_unknown", "INTEGER", "members of unknown age"),
            _c("first_month_seen", "DATE", "first delivery naming the household"),
            _c("months_since_first_seen", "INTEGER", "months from first_month_seen"),
            _c("sources", "VARCHAR[]", "sources that named the household this month"),
            _c("open_needs", "VARCHAR[]", "needs open at the month's end"),
            _c("needs_answered", "VARCHAR[]", "needs answered this month"),
            _c("answers", "VARCHAR[]", "answers received this month"),
            _c("urgence_requests", "INTEGER", "115 requests this month"),
            _c("urgence_not_fulfilled", "INTEGER", "of which not fulfilled"),
            _c("priority_since", "DATE", "earliest open SYPLO label / DALO recourse"),
            _c("exit_date", "DATE", "date of the exit behind a non-active status"),
            _c("housing_kind", "VARCHAR", "social | private | adapted | housing_first | unknown"),
        ),
        subject=("household_id",),
        meaning="Status (active, housed, deceased, left_territory, inactive), situation by the "
        "latest dated evidence (source rank on ties), ETHOS Light, composition, persons and age "
        "bands, first month seen, sources of the month, open needs, answers received.",
    ),
    Table(
        "core.household_events",
        "one row per household entering or leaving the stock in the month",
        (
            _c("month", "DATE", "first day of the month"),
            _c("household_id", "BIGINT", "household entering or leaving"),
            _c("flow", "VARCHAR", "inflow | outflow"),
            _c("type", "VARCHAR", "kind of inflow or outflow"),
            _c("housing_kind", "VARCHAR", "for to_housing"),
            _c("merged_into", "BIGINT", "for duplicate_merged"),
            _c("months_since_exit", "INTEGER", "for returned_from_housing"),
        ),
        subject=("household_id", "merged_into"),
        meaning="Its type (newly identified, returned from housing or from inactivity; to "
        "housing by kind, to inactivity, deceased, left the territory, duplicate merged), "
        "against last month's stored household-months (months run in order: identity and "
        "indicators depend on their month before). Last month's stock + inflows - outflows = "
        "this month's stock.",
    ),
    Table(
        "core.provenance",
        "one row per household-month and staged record behind it",
        (
            _c("month", "DATE", "first day of the month"),
            _c("household_id", "BIGINT", "household-month explained"),
            _c("source", "VARCHAR", "partner source"),
            _c("file_sha256", "VARCHAR", "delivered file (see lineage.files)"),
            _c("row_number", "BIGINT", "row as the partner sees it"),
            _c("evidence_date", "DATE", "date the record speaks for"),
            _c("kind", "VARCHAR", "homeless | housed | deceased | left_territory | unknown"),
        ),
        subject=("household_id", "file_sha256", "row_number"),
        meaning="Any figure traces to partner files (source, file sha256, row number) with one "
        "join on lineage.files.",
    ),
    Table(
        "core.kept_evidence",
        "one row per generation (`kept_for`) and staged record, of the months before that "
        "generation's inactivity window, that can still decide a later month's figures "
        "(observation/kept.sql)",
        (
            _c("month", "DATE", "the record's delivery month"),
            _c("source", "VARCHAR", "partner source"),
            _c("file_sha256", "VARCHAR", "delivered file (see lineage.files)"),
            _c("row_number", "BIGINT", "row as the partner sees it"),
            _c("person_id", "BIGINT", "person as the delivery month's linkage gave it"),
            _c("evidence_date", "DATE", "date the record speaks for"),
            _c("kind", "VARCHAR", "homeless | housed | deceased | left_territory | unknown"),
            _c("situation", "VARCHAR", "situation it states"),
            _c("housing_kind", "VARCHAR", "for a housing exit"),
            _c("situation_rank", "BIGINT", "its source's rank on same-day evidence"),
            _c("sex", "VARCHAR"),
            _c("age_band", "VARCHAR"),
            _c("composition", "VARCHAR"),
            _c("household_size", "BIGINT"),
            _c("need_type", "VARCHAR"),
            _c("need_status", "VARCHAR"),
            _c("need_since", "DATE"),
            _c("request_fulfilled", "BOOLEAN"),
            _c("exit_date", "DATE"),
            _c("answer", "VARCHAR", "the answer the record reports"),
            _c("answer_date", "DATE", "when it was given"),
            _c("until", "DATE", "the rows stand for the months delivered before this one"),
            _c(
                "inputs",
                "VARCHAR",
                "fingerprint of what they were drawn from (those months' staged rows and links, "
                "the ids retired, limitations, source ranks): when it changes, drawn again",
            ),
            _c(
                "kept_for",
                "VARCHAR",
                "month: the window of the latest month observed, where the next month starts; "
                "revision: the first window of the next month's revision",
                "DEFAULT 'month'",
            ),
        ),
        subject=("person_id", "file_sha256", "row_number"),
        by_month=False,
        meaning="Observation's memory of the months out of the inactivity window: per person, "
        "the few records that come first in an order a later month takes over a household's "
        "history (first month seen, latest exit, composition, age band…), so that a month reads "
        "its window's records and these, not the whole staged history. Two generations, each "
        "one month more each month: the latest month observed's (written by "
        "core/household_months) and the one the next revision starts from (written by "
        "marts/revised_indicators); drawn again from staging when their inputs change (a month "
        "observed again after a re-delivery or a rights request, a retention run). No token.",
    ),
    Table(
        "privacy.subjects",
        "one row per keyed token of a person under a rights request (rectify, oppose, limit): "
        "every later run applies it; tokens only, never an identity in clear",
        (
            _c("request_id", "BIGINT", "one per request applied to one person", "NOT NULL"),
            _c(
                "action",
                "VARCHAR",
                "rectify | oppose | limit",
                "NOT NULL CHECK (action IN ('rectify', 'oppose', 'limit'))",
            ),
            _c("record_token", "VARCHAR", "a record of the person (keyed partner reference)"),
            _c("tok_name", "VARCHAR", "a name the person's records carry (keyed)"),
            _c("tok_dob", "VARCHAR", "with tok_name: the birth date it came with (keyed)"),
            _c("replacement", "VARCHAR", "rectify: JSON of token column -> keyed new value"),
            _c("created_at", "TIMESTAMP", "", "NOT NULL"),
        ),
        subject=("record_token", "tok_name", "tok_dob"),
        tokens=("record_token", "tok_name", "tok_dob"),  # and the replacement's token values
        by_month=False,
    ),
    Table(
        "audit.events",
        "one row per operation on personal data (rights request, retention run, correction, key "
        "change, snapshot publication): append-only, never purged by retention (it holds no "
        "person-level data: counts only)",
        (
            _c("recorded_at", "TIMESTAMP", "local time of the operation", "NOT NULL"),
            _c(
                "kind",
                "VARCHAR",
                "what was done, e.g. rights.oppose, retention, key_rotation, snapshot",
                "NOT NULL",
            ),
            _c("actor", "VARCHAR", "OS user who ran it", "NOT NULL"),
            _c(
                "request_ref",
                "VARCHAR",
                "the SIAO's own register reference of the request (never an identity)",
            ),
            _c("counts", "VARCHAR", "JSON object of counts and months: no identity, no token"),
        ),
        by_month=False,
        append_only=True,
    ),
    Table(
        "marts.indicators",
        "one row per month, indicator and dimension (null for the total, else name=value)",
        (
            MONTH,
            _c("indicator", "VARCHAR", "see marts.indicator_definitions", "NOT NULL"),
            _c("dimension", "VARCHAR", "null for the total, else name=value"),
            _c("value", "DOUBLE", "the figure", "NOT NULL"),
        ),
        meaning="Stock, inflow and outflow of households, persons, durations, needs and answers, "
        "coverage by source. Definitions in marts.indicator_definitions and docs/indicators.md.",
    ),
    Table(
        "marts.revised_indicators",
        "one row per vintage, month, indicator and dimension (as in marts.indicators)",
        (
            _c(
                "vintage",
                "DATE",
                "the month whose run revised the figure, with identity as known at its end",
                "NOT NULL",
            ),
            _c("month", "DATE", "the month the figure describes (first day)", "NOT NULL"),
            _c("indicator", "VARCHAR", "see marts.indicator_definitions", "NOT NULL"),
            _c("dimension", "VARCHAR", "null for the total, else name=value"),
            _c("value", "DOUBLE", "the figure", "NOT NULL"),
        ),
        month_column="vintage",
        meaning="The figures of marts.indicators for the vintage month and the "
        "SYNCHRO_REVISION_MONTHS months before it, computed again at the vintage's run with "
        "identity as known then: a household found later to be one already known no longer "
        "counts as an inflow, then as a duplicate_merged outflow. marts.indicators keeps each "
        "month's first computation (what was published); the latest figure of a month is its "
        "latest vintage's. The balance holds within a vintage, from the month before its "
        "first revised month, computed again too.",
    ),
    Table(
        "marts.hidden_population",
        "one row per month and stratum of situations (strata too small are estimated together)",
        (
            MONTH,
            _c("stratum", "VARCHAR", "abri | rue | tiers, or several joined by '+'", "NOT NULL"),
            _c("lists", "VARCHAR[]", "the lists (grouped sources) whose overlap is modelled"),
            _c(
                "households_seen",
                "INTEGER",
                "households seen by a list this month and without a home at its end: a count",
                "NOT NULL",
            ),
            _c("estimated_unseen", "DOUBLE", "ESTIMATE of the households no list saw"),
            _c("unseen_lower", "DOUBLE", "95 % interval of the estimate, lower end"),
            _c("unseen_upper", "DOUBLE", "95 % interval of the estimate, upper end"),
            _c("models", "VARCHAR", "JSON: the log-linear models averaged, BIC weights, estimates"),
            _c("warnings", "VARCHAR[]", "why the estimate may be unstable (docs/estimation.md)"),
        ),
        meaning="Multiple-systems estimate of the households no partner saw in the month, from "
        "how the lists overlap (docs/estimation.md). Estimates, not counts: the intervals "
        "here carry the models' uncertainty only; marts.estimates adds identity's.",
    ),
    Table(
        "marts.estimates",
        "one row per month and figure",
        (
            MONTH,
            _c(
                "indicator",
                "VARCHAR",
                "estimated_households_total | estimated_households_unseen "
                "| stock_households | inflow_households | outflow_households",
                "NOT NULL",
            ),
            _c(
                "kind",
                "VARCHAR",
                "'estimation': a model's estimate, never a count; 'linkage_range': a count of "
                "marts.indicators with the range identity's doubtful decisions allow",
                "NOT NULL",
            ),
            _c("value", "DOUBLE", "the estimate, or the count as in marts.indicators"),
            _c("lower", "DOUBLE", "lower end: 95 % interval (estimation) or linkage range"),
            _c("upper", "DOUBLE", "upper end: 95 % interval (estimation) or linkage range"),
        ),
        meaning="Figures with a range: the estimated households without a home, seen or not "
        "(interval: models and linkage), and the stock, inflow and outflow counts with their "
        "linkage range. Kept apart from marts.indicators so that no estimate passes for a "
        "count (docs/estimation.md).",
    ),
    Table(
        "marts.indicator_definitions",
        "one row per indicator: unit, definition (in English and French), dimensions, additive",
        (
            _c("indicator", "VARCHAR", "its name in marts.indicators"),
            _c("unit", "VARCHAR", "households | persons | requests | months"),
            _c("definition", "VARCHAR", "what it counts or measures, and how"),
            _c("definition_fr", "VARCHAR", "the definition in French (reports, public tables)"),
            _c("dimensions", "VARCHAR[]", "families of rows with dimension 'family=value'"),
            _c("additive", "BOOLEAN", "the parts of each dimension add up to the total"),
        ),
        by_month=False,
        meaning="What each indicator of marts.indicators means (also docs/indicators.md).",
    ),
)
TABLES: dict[str, Table] = {t.name: t for t in _TABLES}

# Polars type of a Pandera field -> DuckDB type of its staging column
_DUCKDB_TYPES = {
    pl.String: "VARCHAR",
    pl.Date: "DATE",
    pl.Int64: "BIGINT",
    pl.Int32: "INTEGER",
    pl.Float64: "DOUBLE",
    pl.Boolean: "BOOLEAN",
}


def staging_table(source_id: str) -> Table:
    """`staging.<source>`: columns and types from the source's Pandera model."""
    source = all_sources()[source_id]
    fields = source.model.to_schema().columns
    columns = tuple(
        _c(
            name,
            _DUCKDB_TYPES[field.dtype.type.base_type()],
            "",
            "" if field.nullable else "NOT NULL",
        )
        for name, field in fields.items()
    )
    return Table(
        f"staging.{source_id}",
        f"one row per usable row of {source.partner}'s files for the month, pseudonymised "
        "(keyed tokens only) and in canonical codes",
        columns,
        subject=tuple(c for c in fields if c.startswith("tok_") or c.endswith("_token")),
        tokens=tuple(c for c in fields if c.startswith("tok_") or c.endswith("_token")),
    )


def quarantine_table(source_id: str) -> Table:
    return Table(
        f"quarantine.{source_id}",
        "one row per rejected row of the partner's files for the month, with its reasons "
        "(no personal value)",
        (
            _c("source", "VARCHAR", "partner source", "NOT NULL"),
            MONTH,
            _c("file_sha256", "VARCHAR", "delivered file (see lineage.files)", "NOT NULL"),
            _c("file_name", "VARCHAR", "relative to the landing directory", "NOT NULL"),
            _c("row_number", "BIGINT", "row as the partner sees it", "NOT NULL"),
            _c("reasons", "VARCHAR[]", "reason codes", "NOT NULL"),
        ),
        subject=("file_sha256", "row_number"),  # the partner's row names a person
    )


def table(name: str) -> Table:
    """The table called `schema.name`, staging and quarantine tables included."""
    schema, _, rest = name.partition(".")
    if schema == "staging":
        return staging_table(rest)
    if schema == "quarantine":
        return quarantine_table(rest)
    return TABLES[name]


def catalogue() -> list[Table]:
    """Every table the pipeline writes."""
    per_source = [f(s) for s in all_sources() for f in (staging_table, quarantine_table)]
    return [*TABLES.values(), *per_source]


def personal_tables() -> list[Table]:
    """Tables holding person- or household-level data, with the columns that identify them."""
    return [t for t in catalogue() if t.personal]


def tables_in(prefix: str) -> list[str]:
    """Names of the catalogued tables of a schema (e.g. "identity")."""
    return sorted(t.name for t in catalogue() if t.schema == prefix)


def existing_tables(conn: duckdb.DuckDBPyConnection, schema: str | None = None) -> list[str]:
    """`schema.table` of every table present (of one schema if given), sorted."""
    rows = conn.execute(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables "
        "WHERE table_schema NOT IN ('information_schema', 'pg_catalog', 'main') "
        "AND (? IS NULL OR table_schema = ?) AND table_type = 'BASE TABLE' "
        "AND table_catalog = current_database() ORDER BY table_schema, table_name",
        [schema, schema],
    ).fetchall()
    return [name for (name,) in rows]


def ensure(conn: duckdb.DuckDBPyConnection, *names: str) -> None:
    """Creates the named tables (and their schemas) that do not exist yet, with comments."""
    present = set(existing_tables(conn))
    for name in names:
        if name in present:
            _add_missing_columns(conn, table(name))
            continue
        create(conn, table(name))


def ensure_staging(conn: duckdb.DuckDBPyConnection) -> None:
    """The staging tables present gain the columns declared since they were written, null (their
    records have no such token: the levels and requests reading it do not apply to them)."""
    ensure(conn, *sorted(set(existing_tables(conn, "staging")) & set(tables_in("staging"))))


def create(conn: duckdb.DuckDBPyConnection, spec: Table) -> None:
    """Creates a declared table (and its schema) in the current database, with its comments."""
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {spec.schema}")
    conn.execute(spec.ddl())
    conn.execute(f"COMMENT ON TABLE {spec.name} IS {quoted(spec.description)}")
    for column in spec.columns:
        if column.comment:
            conn.execute(f"COMMENT ON COLUMN {spec.name}.{column.name} IS {quoted(column.comment)}")


def _missing_columns(conn: duckdb.DuckDBPyConnection, spec: Table) -> list[Column]:
    """The columns declared since the table was created: absent from it."""
    schema, _, name = spec.name.partition(".")
    found = {
        c
        for (c,) in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND "
            "table_name = ? AND table_catalog = current_database()",
            [schema, name],
        ).fetchall()
    }
    return [column for column in spec.columns if column.name not in found]


def _add_missing_columns(conn: duckdb.DuckDBPyConnection, spec: Table) -> None:
    """A column declared since the table was created is added (with its default)."""
    for column in _missing_columns(conn, spec):
        default = column.constraint if column.constraint.startswith("DEFAULT") else ""
        conn.execute(f"ALTER TABLE {spec.name} ADD COLUMN {column.name} {column.type} {default}")


def as_declared(conn: duckdb.DuckDBPyConnection, name: str) -> str:
    """The staging table `name` as a relation whose columns declared since it was written read as
    null, as `ensure_staging` adds them (a staging column has no default: its records have no
    such token), for a reader that does not alter the table (a read-only connection, a check);
    the table itself if none is missing, or if its source is no longer shipped."""
    source = name.removeprefix("staging.")
    if source not in all_sources():
        return name
    missing = _missing_columns(conn, staging_table(source))
    if not missing:
        return name
    added = ", ".join(f"CAST(NULL AS {c.type}) AS {c.name}" for c in missing)
    return f"(SELECT *, {added} FROM {name})"


def quoted(text: str) -> str:
    """A SQL string literal (a path into ATTACH, which takes no parameter)."""
    return "'" + text.replace("'", "''") + "'"


def replace_month(
    conn: duckdb.DuckDBPyConnection,
    month: date,
    rows: Mapping[str, pl.DataFrame | str],
    source: str | None = None,
) -> dict[str, int]:
    """Replaces the month (only `source`'s rows, if given) in each table by its new rows — a
    DataFrame or the name of a relation on `conn` — in one transaction; a table that is not
    `by_month` is replaced whole, re-created from its declaration (a column declared since
    appears). Returns the rows written per table."""
    if append_only := [name for name in rows if table(name).append_only]:
        raise ValueError(f"{', '.join(append_only)}: append-only, rows are never replaced")
    ensure(conn, *rows)
    relations: dict[str, str] = {}
    registered: list[str] = []
    try:
        for i, (name, frame) in enumerate(rows.items()):
            if isinstance(frame, str):
                relations[name] = frame
            elif frame.height:  # an empty frame may lack columns: nothing to insert
                registered.append(f"_replace_{i}")
                conn.register(registered[-1], frame)
                relations[name] = registered[-1]
        counts = {name: 0 for name in rows}
        conn.execute("BEGIN TRANSACTION")
        try:
            for name in rows:
                spec = table(name)
                if spec.by_month:
                    where, params = _month_slice(spec.month_column, month, source)
                    conn.execute(f"DELETE FROM {name}{where}", params)
                else:
                    conn.execute(f"DROP TABLE {name}")
                    create(conn, spec)
                if name in relations:
                    relation = relations[name]
                    conn.execute(f"INSERT INTO {name} BY NAME SELECT * FROM {relation}")
                    counts[name] = conn.execute(f"SELECT count(*) FROM {relation}").fetchall()[0][0]
            conn.execute("COMMIT")
        except Exception:
            conn.execute("ROLLBACK")
            raise
    finally:
        for alias in registered:
            conn.unregister(alias)
    return counts


def _month_slice(column: str, month: date, source: str | None) -> tuple[str, list[object]]:
    if source is None:
        return f" WHERE {column} = ?", [month]
    return f" WHERE {column} = ? AND source = ?", [month, source]


def staged_history(
    conn: duckdb.DuckDBPyConnection, columns: str, until: date
) -> tuple[str, list[date]]:
    """SQL reading `columns` from every staging table, months up to `until`, and its
    parameters; a column declared since a table was written reads as null (`as_declared`).
    Records of a person whose processing is limited are left out (`privacy.subjects`,
    action limit: their record tokens, their name with their birth date or with none; the rule
    `privacy.rules.Requests.covers` applies to a delivery)."""
    tables = [as_declared(conn, t) for t in existing_tables(conn, "staging")]
    limited = ""
    if "privacy.subjects" in existing_tables(conn, "privacy"):
        limited = (
            " AND NOT EXISTS (SELECT 1 FROM privacy.subjects p WHERE p.action = 'limit' AND "
            "(p.record_token = s.record_token OR (p.tok_name = s.tok_name AND "
            "(p.tok_dob = s.tok_dob OR s.tok_dob IS NULL))))"
        )
    union = " UNION ALL ".join(
        f"SELECT {columns} FROM {t} AS s WHERE month <= ?{limited}" for t in tables
    )
    return union, [until] * len(tables)


# a writer waits this long, at most, for a reader (a sensor tick, the CLI) to let go
_LOCK_RETRIES = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2)


# a run's warehouse, opened once for all its steps (`held_open`): database file -> connection
_held: dict[Path, duckdb.DuckDBPyConnection] = {}


@contextmanager
def held_open(path: Path) -> Iterator[None]:
    """Keeps the warehouse open while a run's steps execute, one after another in this process:
    `connect` and `read_only` then hand out a cursor of that one connection (its own
    transactions and temporary tables, closed with the step) instead of opening the file and
    checkpointing it at every close: a metropole month opened it 34 times (about 50 ms each
    with the checkpoint). Other processes (sensors, the CLI) cannot open the file meanwhile, as
    during any write; it is checkpointed and closed when the run ends, whatever happens."""
    key = path.resolve()
    if key in _held:
        yield
        return
    with _opened(path) as conn:
        _held[key] = conn
        try:
            yield
        finally:
            del _held[key]


@contextmanager
def connect(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The pipeline's read-write connection (one writer at a time), closed whatever happens;
    the warehouse and its directory are its owner's only. Within a run, a cursor of the run's
    connection (`held_open`)."""
    held = _held.get(path.resolve())
    with held.cursor() if held is not None else _opened(path) as conn:
        yield conn


@contextmanager
def _opened(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # an existing folder is left as is
    for wait in (*_LOCK_RETRIES, None):
        try:
            conn = duckdb.connect(str(path))
            break
        except duckdb.IOException:
            if wait is None:
                raise
            time.sleep(wait)
    path.chmod(0o600)
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def read_only(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection: for sensors, the CLI and analysts. Raises duckdb.IOException
    while a run holds the file for writing. Within a run (`held_open`), a cursor of the run's
    connection: the same process cannot open the file a second time."""
    held = _held.get(path.resolve())
    with held.cursor() if held is not None else duckdb.connect(str(path), read_only=True) as conn:
        yield conn
