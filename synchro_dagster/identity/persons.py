"""Stable person and household ids, month after month, from the linkage of staged records.

Incremental: a month's records are scored against each other and against the history; the
history keeps the ids it had. A new record joins the person it matches, or starts a new one;
a record bridging two known persons merges them (the oldest id survives, an alias row
records the other). Ids are sequential surrogates, never derived from identity.
Manual corrections ("never link" / "always link" token pairs) are data every run respects.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date

import duckdb
import polars as pl

from synchro_dagster import warehouse
from synchro_dagster.identity.aliases import AliasResolver
from synchro_dagster.identity.horizon import forgotten_links, months_before, without_forgotten
from synchro_dagster.identity.linkage import (
    LINK_COLUMNS,
    MATCH_THRESHOLD,
    PROGRESS,
    TF_COLUMNS,
    WEAK_THRESHOLD,
    Components,
    Estimate,
    Frequencies,
    ambiguous,
    estimate,
    load_model,
    markers,
    one_of_several,
    scored_pairs,
    split_by_strength,
)

ALONE = ("homme_seul", "femme_seule", "mineur_isole")  # compositions of one person
IDENTITY_TABLES = (
    "person_links",
    "person_aliases",
    "households",
    "household_aliases",
    "churn",
    "models",
    "id_sequences",
)
CORRECTIONS = "identity.corrections"
# the model is re-estimated on the territory's own records when they have grown this much since
# its last estimate (the first time: as soon as there are enough), on the latest records
REESTIMATE_GROWTH = 2.0
TRAINING_RECORDS_MAX = 300_000
RECORD_KEY = "source || ':' || file_sha256 || ':' || row_number"


@dataclass
class MonthIdentity:
    month: date
    links: pl.DataFrame  # record_key, source, person_id (this month's records)
    person_aliases: list[tuple[int, int]] = field(default_factory=list)
    households: pl.DataFrame | None = None  # household_id, person_id
    household_aliases: list[tuple[int, int]] = field(default_factory=list)
    churn: dict[tuple[str, str], int] = field(default_factory=dict)
    estimate: Estimate | None = None  # the model re-estimated this month, used if accepted
    model_from: date | None = None  # month of the estimate in use (None: the shipped model)


def ensure_tables(conn: duckdb.DuckDBPyConnection) -> None:
    """The identity tables; and the staging tables written before a token column was added gain
    it (`warehouse.ensure_staging`)."""
    warehouse.ensure(conn, *(f"identity.{t}" for t in IDENTITY_TABLES), CORRECTIONS)
    warehouse.ensure_staging(conn)


ID_SOURCES = {  # entity -> where its ids are held
    "person": ("identity.person_links", "person_id"),
    "household": ("identity.households", "household_id"),
}


def next_free_id(conn: duckdb.DuckDBPyConnection, entity: str) -> int:
    """One more than the highest id of `entity` held or ever given (`identity.id_sequences`,
    written by retention before it deletes ids): an id is never given twice."""
    table, column = ID_SOURCES[entity]
    (held,) = conn.execute(f"SELECT coalesce(max({column}), 0) FROM {table}").fetchall()[0]
    given = conn.execute(
        "SELECT last_id FROM identity.id_sequences WHERE entity = ?", [entity]
    ).fetchall()
    return 1 + max([int(held), *(int(g) for (g,) in given)])


def record_id_sequences(conn: duckdb.DuckDBPyConnection) -> None:
    """Remembers the highest id of each entity given so far (before ids are deleted)."""
    ensure_tables(conn)
    last = {entity: next_free_id(conn, entity) - 1 for entity in ID_SOURCES}
    conn.execute("DELETE FROM identity.id_sequences")
    conn.executemany("INSERT INTO identity.id_sequences VALUES (?, ?)", list(last.items()))


PROFILE = tuple(c for c in LINK_COLUMNS if c != "record_id")  # what scoring reads of a record
HISTORY_COLUMNS = (
    f"{RECORD_KEY} AS record_key, month, source, {', '.join(PROFILE)}, composition, household_size"
)


def staged_records(conn: duckdb.DuckDBPyConnection, until: date) -> pl.DataFrame:
    """Every staged record up to a month: record_key, month, source, household_token, tokens,
    and the household the source declares (composition, household_size)."""
    union, params = warehouse.staged_history(conn, HISTORY_COLUMNS, until)
    return conn.sql(
        f"SELECT row_number() OVER (ORDER BY month, record_key) AS record_id, * FROM ({union})",
        params=params,
    ).pl()


class History:
    """The records a month is linked with, read in the warehouse, never whole in memory: the
    month's own records, and from the history only what scoring needs (one record of each
    spelling of each known person, name frequencies, the markers of the persons a pair
    reaches). `node_key` is a record's known person, or the record itself when it has none."""

    def __init__(
        self,
        conn: duckdb.DuckDBPyConnection,
        month: date,
        linked: pl.DataFrame,  # record_key -> person_id (today's id) of the records linked before
        forgotten: pl.DataFrame,  # record_key of the forgotten persons' records
        since: date,  # a record never linked counts from this month
    ) -> None:
        self.conn, self.month = conn, month
        union, params = warehouse.staged_history(conn, HISTORY_COLUMNS, month)
        conn.register("_linked", linked.select("record_key", "person_id"))
        conn.register("_forgotten", forgotten.select("record_key"))
        self.base = (
            "SELECT s.*, k.person_id, coalesce(CAST(k.person_id AS VARCHAR), s.record_key) "
            f"AS node_key FROM ({union}) s LEFT JOIN _linked k USING (record_key) "
            "WHERE NOT EXISTS (SELECT 1 FROM _forgotten f WHERE f.record_key = s.record_key) "
            "AND (k.person_id IS NOT NULL OR s.month >= ?)"
        )
        self.params = [*params, since]

    def close(self) -> None:
        self.conn.unregister("_linked")
        self.conn.unregister("_forgotten")

    def sql(self, select: str, params: list | None = None) -> pl.DataFrame:
        """`select` on the history as `h`."""
        return self.conn.sql(
            f"WITH h AS ({self.base}) {select}", params=[*self.params, *(params or [])]
        ).pl()

    def size(self) -> int:
        return int(self.sql("SELECT count(*) AS n FROM h")["n"][0])

    def scored(self) -> pl.DataFrame:
        """One record (the first) of each distinct spelling of each known person, and the
        month's records: a person seen every month by the same partners, typed the same way, is
        one record here however long the history (its other records score exactly as this
        one). record_id follows (month, record_key), as in `staged_records`."""
        profile = ", ".join(PROFILE)
        spellings = self.sql(
            f"SELECT min(strftime(month, '%Y%m') || record_key) AS _order, min(month) AS month, "
            f"any_value(person_id) AS person_id, node_key, {profile} FROM h WHERE month < ? "
            f"GROUP BY node_key, {profile}",
            [self.month],
        )
        new = self.sql(
            "SELECT strftime(month, '%Y%m') || record_key AS _order, * FROM h WHERE month = ?",
            [self.month],
        )
        both = pl.concat([spellings, new], how="diagonal_relaxed").sort("_order")
        return (
            both.drop("_order")
            .with_row_index("record_id", offset=1)
            .with_columns(pl.col("record_id").cast(pl.Int64))
        )

    def frequencies(self) -> Frequencies:
        counts = {
            column: self.sql(
                f"SELECT {column}, count(*) AS n FROM h WHERE {column} IS NOT NULL GROUP BY 1"
            )
            for column in TF_COLUMNS
        }
        return Frequencies(self.size(), counts)

    def of_nodes(self, keys: pl.Series) -> pl.DataFrame:
        """Every record of these nodes (node_key): what tells persons apart (`markers`) and
        when each was seen."""
        self.conn.register("_nodes", keys.unique().to_frame("node_key"))
        try:
            return self.sql(
                "SELECT node_key, month, source, household_token, tok_dob, tok_dob_swapped, "
                "tok_dob_near, tok_birth_year FROM h SEMI JOIN _nodes USING (node_key)"
            )
        finally:
            self.conn.unregister("_nodes")

    def latest(self, n: int) -> pl.DataFrame:
        """The latest `n` records (a training sample), with record ids in order."""
        rows = self.sql(f"SELECT * FROM h ORDER BY month DESC, record_key DESC LIMIT {int(n)}")
        return (
            rows.reverse()
            .with_row_index("record_id", offset=1)
            .with_columns(pl.col("record_id").cast(pl.Int64))
        )


def link_month(
    conn: duckdb.DuckDBPyConnection, month: date, retention_months: int = 24
) -> MonthIdentity:
    """Person ids for the month's records, keeping every id the history already gave. Persons
    no partner named in the `retention_months` months before are forgotten (as retention
    deletes them): a record of theirs now starts a new person."""
    ensure_tables(conn)
    forgotten = forgotten_links(conn, month, retention_months)
    linked = conn.sql(
        "SELECT record_key, arg_max(person_id, month) AS person_id, max(month) AS seen "
        "FROM identity.person_links WHERE month < ? GROUP BY record_key",
        params=[month],
    ).pl()
    aliases = AliasResolver(
        conn.execute(
            "SELECT month, alias_id, person_id FROM identity.person_aliases WHERE month < ?",
            [month],
        ).fetchall()
    )
    # a merge of a merge: follow the chain to today's id
    linked = linked.with_columns(aliases.resolved(linked, "person_id", "seen")).drop("seen")
    history = History(conn, month, linked, forgotten, months_before(month, retention_months))
    try:
        return _link(conn, history, forgotten)
    finally:
        history.close()


def _link(
    conn: duckdb.DuckDBPyConnection, history: History, forgotten: pl.DataFrame
) -> MonthIdentity:
    month = history.month
    said, started = f"identity {month:%Y-%m}:", time.perf_counter()  # progress lines' prefix
    frequencies = history.frequencies()
    model, estimated, model_from = territory_model(conn, history, frequencies.records)
    if estimated is not None:
        PROGRESS.info(
            "%s model estimated on the territory's records (%.0f s)",
            said,
            time.perf_counter() - started,
        )
    # a known person is one node (its records are already together), holding the markers of
    # all its records; the month is scored against one record of each of its spellings
    scored = history.scored()
    offset = 1 + scored.height
    scored = scored.with_columns(
        pl.when(pl.col("person_id").is_not_null())
        .then(offset + pl.col("person_id"))
        .otherwise(pl.col("record_id"))
        .alias("node")
    )
    new = scored.filter(pl.col("month") == month)
    known = scored.filter(pl.col("month") < month)
    PROGRESS.info(
        "%s scoring %d records of the month against %d known spellings",
        said,
        new.height,
        known.height,
    )
    edges = scored_pairs(new, model, WEAK_THRESHOLD, known=known, frequencies=frequencies)
    PROGRESS.info(
        "%s %d likely pairs (%.0f s so far); forming persons",
        said,
        edges.height,
        time.perf_counter() - started,
    )
    edges, always = _apply_corrections(conn, scored, edges)
    edges = _heaviest_per_person(edges, scored)
    node_of: dict[int, int] = dict(scored.select("record_id", "node").iter_rows())
    paired = pl.concat([edges["a"], edges["b"], *(pl.Series([a, b]) for a, b in always)])
    reached = scored.join(paired.unique().to_frame("record_id"), on="record_id", how="semi")
    seen = history.of_nodes(reached["node_key"]).join(
        scored.select("node_key", "node").unique(), on="node_key"
    )
    node_marks = markers(seen, by="node")
    last_seen: dict[int, date] = dict(  # node -> the month of its latest record
        seen.group_by("node").agg(pl.col("month").max()).iter_rows()
    )
    previous = _previous_households(conn, month, forgotten)
    companions = _companions(new)
    homes = _companions_homes(previous, companions, split_by_strength(edges)[0], node_of, offset)
    undated = set(new.filter(pl.col("tok_birth_year").is_null())["record_id"].to_list())
    edges = _listed_elsewhere(edges, undated, previous, homes, node_of, offset)
    pairs, weak = split_by_strength(edges)
    unsure, edges_left, choices = ambiguous(
        pairs,
        node_of,
        node_marks,
        new["record_id"].to_list(),
        _household_context(previous, homes, offset),
        last_seen,
    )
    comp = Components(node_marks)
    for a, b in always:  # a correction joins whatever the markers say
        comp.union(node_of[a], node_of[b], force=True)
    for a, b, _ in edges_left:
        comp.union(node_of[a], node_of[b])
    comp.join_first(choices, node_of)
    several = one_of_several(
        comp, weak, node_of, new["record_id"].to_list(), last_seen, known=lambda n: n >= offset
    )
    by_household = _joined_by_household(
        comp, weak, node_of, new["record_id"].to_list(), previous, companions, offset
    )

    next_id = next_free_id(conn, "person")
    members: dict[int, set[int]] = defaultdict(set)  # component -> known person ids
    for node in set(node_of.values()):
        if node >= offset:
            members[comp.find(node)].add(node - offset)
    result = MonthIdentity(month, pl.DataFrame(), estimate=estimated, model_from=model_from)
    id_of: dict[int, int] = {}
    created = 0
    for rid in new["record_id"].to_list():
        root = comp.find(node_of[rid])
        if root not in id_of:
            persons = sorted(members.get(root, ()))
            if persons:
                id_of[root] = persons[0]  # the oldest id survives a merge
                result.person_aliases += [(alias, persons[0]) for alias in persons[1:]]
            else:
                id_of[root], next_id, created = next_id, next_id + 1, created + 1
    result.links = (
        new.select("record_key", "source", "record_id")
        .with_columns(
            pl.col("record_id")
            .replace_strict(
                {r: id_of[comp.find(node_of[r])] for r in new["record_id"].to_list()},
                return_dtype=pl.Int64,
            )
            .alias("person_id")
        )
        .drop("record_id")
    )
    result.churn = {
        ("person", "created"): created,
        ("person", "merged"): len(result.person_aliases),
        ("person", "split"): 0,
        # fitted several persons equally: joined the one seen last; ties among those
        ("record", "ambiguous"): len(unsure),
        ("record", "ambiguous_tied"): sum(not settled for settled in unsure.values()),
        # no likely pair alone, but likely one of several known namesakes together
        ("record", "one_of_several"): several,
        # no likely pair, but a weak one to a person of a companion's household
        ("record", "by_household"): by_household,
    }
    result.households, result.household_aliases, household_churn = _households(
        conn,
        month,
        new.drop("person_id").join(result.links.select("record_key", "person_id"), on="record_key"),
        previous,
    )
    result.churn.update(household_churn)
    PROGRESS.info(
        "%s %d persons created, %d merged; households formed (%.0f s)",
        said,
        created,
        len(result.person_aliases),
        time.perf_counter() - started,
    )
    return result


def _heaviest_per_person(edges: pl.DataFrame, scored: pl.DataFrame) -> pl.DataFrame:
    """A record of the month paired with several spellings of one known person keeps only its
    heaviest pair of each kind (dates agreeing or not, at or above the match threshold or
    weaker, as `split_by_strength` sorts them): every use of the pairs takes a person's best of
    a kind, and each other pair would cost a turn of every loop."""
    node = scored.select(pl.col("record_id").alias("a"), pl.col("node").alias("_node"))
    strong = pl.col("w") >= math.log2(MATCH_THRESHOLD / (1 - MATCH_THRESHOLD))
    return (
        edges.join(node, on="a")
        .with_columns(strong.alias("_strong"))
        .sort(["w", "a", "b"], descending=[True, False, False])
        .unique(
            ["_node", "b", "both_dated", "dates_agree", "_strong"],
            keep="first",
            maintain_order=True,
        )
        .drop("_node", "_strong")
    )


def _previous_households(
    conn: duckdb.DuckDBPyConnection, month: date, forgotten: pl.DataFrame
) -> dict[int, int]:
    """person_id -> the household it was last in, before this month (forgotten persons
    aside)."""
    rows = conn.sql(
        "SELECT month, person_id, household_id FROM identity.households WHERE month < ?",
        params=[month],
    ).pl()
    last = (
        without_forgotten(rows, forgotten)
        .sort("month")
        .group_by("person_id")
        .agg(pl.col("household_id").last())
    )
    return dict(last.iter_rows())


def _companions(records: pl.DataFrame) -> dict[int, set[int]]:
    """record -> the other records (of the month) listed in its partner household."""
    listed = records.filter(pl.col("household_token").is_not_null())
    together: dict[str, set[int]] = defaultdict(set)
    for rid, token in listed.select("record_id", "household_token").iter_rows():
        together[token].add(rid)
    return {r: group - {r} for group in together.values() for r in group if len(group) > 1}


def _companions_homes(
    home: dict[int, int],
    companions: dict[int, set[int]],
    pairs: list[tuple[int, int, float]],
    node_of: dict[int, int],
    offset: int,
) -> Callable[[int], set[int]]:
    """record -> the households (as known before this month) of the persons listed with it in
    this month's partner household, each known already or by the best pair it has with a known
    person."""
    known_as: dict[int, tuple[float, int]] = {}  # record -> (weight, known person) of its best pair
    for a, b, w in pairs:
        for r, other in ((a, b), (b, a)):
            if node_of[other] >= offset and w > known_as.get(r, (-math.inf, 0))[0]:
                known_as[r] = (w, node_of[other] - offset)

    def person(rid: int) -> int | None:
        node = node_of[rid]
        return node - offset if node >= offset else known_as.get(rid, (0, None))[1]

    def homes(record: int) -> set[int]:
        found = {home.get(person(c)) for c in companions.get(record, ())}
        found.discard(None)
        return found

    return homes


def _household_context(
    home: dict[int, int], homes: Callable[[int], set[int]], offset: int
) -> Callable[[int, set[int]], set[int]]:
    """For a record that fits several known persons: the ones living in a household (as known
    before this month) with a companion of the record (`homes`: `_companions_homes`)."""

    def prefer(record: int, candidates: set[int]) -> set[int]:
        around = homes(record)
        return {n for n in candidates if n >= offset and home.get(n - offset) in around}

    return prefer


def _listed_elsewhere(
    edges: pl.DataFrame,
    undated: set[int],
    home: dict[int, int],
    homes: Callable[[int], set[int]],
    node_of: dict[int, int],
    offset: int,
) -> pl.DataFrame:
    """The pairs without the ones of an undated record of the month (`undated`: a name is all
    it says) with a known person who lived with others in a household none of the record's
    companions belongs to: the partner lists the record with another family, and a name alone
    does not outweigh that (a common name's namesake would otherwise join, and bring the two
    households together). Such a record stays with its companions' household."""
    shared = Counter(home.values())
    dropped = []
    listed = sorted(undated)
    ends = pl.col("a").is_in(listed) | pl.col("b").is_in(listed)
    for a, b in edges.filter(ends).select("a", "b").iter_rows():
        for r, other in ((a, b), (b, a)):
            node = node_of[other]
            if r not in undated or node < offset:
                continue
            household = home.get(node - offset)
            around = homes(r)
            if around and shared[household] > 1 and household not in around:
                dropped.append((a, b))
    if not dropped:
        return edges
    return edges.join(
        pl.DataFrame(dropped, schema={"a": pl.Int64, "b": pl.Int64}, orient="row"),
        on=["a", "b"],
        how="anti",
    )


def _joined_by_household(
    comp: Components,
    weak: list[tuple[int, int, float]],
    node_of: dict[int, int],
    new: list[int],
    home: dict[int, int],
    companions: dict[int, set[int]],
    offset: int,
) -> int:
    """A new person of the month (records of this month only, no known person among them,
    typically one record), whose weak pairs (match probability `WEAK_THRESHOLD` to the match
    threshold) point to known persons of whom exactly one lived (before this month) in the
    household of a companion of its records, joins that person: the partner listing them
    together is the evidence the names and dates lacked (an undated record of a common name,
    a badly typed one). A companion's own person is never a candidate. Returns how many
    joined."""
    known: dict[int, set[int]] = defaultdict(set)  # component -> its known persons
    for node in set(node_of.values()):
        if node >= offset:
            known[comp.find(node)].add(node - offset)
    paired: dict[int, set[int]] = defaultdict(set)  # record -> the known persons' nodes
    for a, b, _ in weak:
        for x, y in ((a, b), (b, a)):
            if node_of.get(y, y) >= offset:
                paired[x].add(node_of[y])
    newcomers: dict[int, list[int]] = defaultdict(list)  # new person -> its records
    for rid in new:
        root = comp.find(node_of[rid])
        if root not in known:
            newcomers[root].append(rid)
    joins = []  # decided on the components clustering left, then made
    for root, rids in sorted(newcomers.items()):
        beside = {comp.find(node_of[c]) for r in rids for c in companions.get(r, ())} - {root}
        homes = {home[p] for b in beside for p in known.get(b, ()) if p in home}
        targets = {comp.find(y) for r in rids for y in paired.get(r, ())} - beside - {root}
        fitting = {t for t in targets if any(home.get(p) in homes for p in known.get(t, ()))}
        if len(fitting) == 1:
            joins.append((root, fitting.pop()))
    joined = 0
    for root, target in joins:
        joined += comp.union(root, target)
    return joined


def territory_model(
    conn: duckdb.DuckDBPyConnection, history: History, records: int
) -> tuple[dict, Estimate | None, date | None]:
    """The model a month is linked with: the territory's latest accepted estimate (before this
    month), re-estimated now from the shipped model when the records have grown
    `REESTIMATE_GROWTH` times since the last estimate, or when the estimates are of comparisons
    this release no longer makes (an upgrade). A new estimate is used only if it passes
    `model_problems`; otherwise the one before stays (and the shipped model before any)."""
    rows = conn.execute(
        "SELECT month, records, accepted, model FROM identity.models WHERE month < ? "
        "ORDER BY month",
        [history.month],
    ).fetchall()
    shipped = load_model()
    accepted = [(m, json.loads(model)) for m, _, ok, model in rows if ok]
    current = [(m, a) for m, a in accepted if _comparisons(a) == _comparisons(shipped)]
    model_from, model = current[-1] if current else (None, shipped)
    estimated = None
    grown = not rows or records >= REESTIMATE_GROWTH * rows[-1][1]
    if grown or len(current) < len(accepted):
        estimated = estimate(history.latest(TRAINING_RECORDS_MAX), shipped)
        if estimated is not None:  # growth is judged on the history, not the capped sample
            estimated = replace(estimated, records=records)
        if estimated is not None and estimated.accepted:
            model_from, model = history.month, estimated.model
    return model, estimated, model_from


def _comparisons(model: dict) -> list[tuple[str, list[str]]]:
    """What a model compares (each comparison's levels' SQL), whatever it learned."""
    return [
        (c["output_column_name"], [lv["sql_condition"] for lv in c["comparison_levels"]])
        for c in model["comparisons"]
    ]


def _apply_corrections(
    conn: duckdb.DuckDBPyConnection, records: pl.DataFrame, edges: pl.DataFrame
) -> tuple[pl.DataFrame, list[tuple[int, int]]]:
    """The model's pairs without the 'never' pairs, and the 'always' pairs, whatever the model
    says."""
    rules = conn.sql("SELECT token_a, token_b, rule FROM identity.corrections").pl()
    if rules.height == 0:
        return edges, []
    by_token = records.select("record_id", "tok_name").drop_nulls()
    pairs = rules.join(
        by_token.rename({"tok_name": "token_a", "record_id": "a"}), on="token_a"
    ).join(by_token.rename({"tok_name": "token_b", "record_id": "b"}), on="token_b")
    never = pairs.filter(pl.col("rule") == "never").select("a", "b")
    edges = edges.join(never, on=["a", "b"], how="anti").join(
        never.rename({"a": "b", "b": "a"}), on=["a", "b"], how="anti"
    )
    always = pairs.filter(pl.col("rule") == "always").select("a", "b")
    return edges, list(always.iter_rows())


def _households(
    conn: duckdb.DuckDBPyConnection, month: date, records: pl.DataFrame, previous: dict[int, int]
) -> tuple[pl.DataFrame, list[tuple[int, int]], dict[tuple[str, str], int]]:
    """Persons seen together in a partner household this month form one household, with the
    persons of their previous household seen apart this month (unless declared alone now; of
    several previous households, those holding most of its persons); its id is the previous
    household id that shares the most persons with it (of parts sharing as many, not one
    declared alone now: the one leaving takes a new id; then the smallest person id)."""
    comp = Components()
    persons = sorted(records["person_id"].unique().to_list())
    for pid in persons:
        comp.find(pid)
    for group in (
        records.filter(pl.col("household_token").is_not_null())
        .group_by("household_token")
        .agg(pl.col("person_id").unique())["person_id"]
    ):
        for pid in group[1:]:
            comp.union(group[0], pid)
    # a person listed apart from the rest of their household this month (the SNE applicant
    # alone, a parent met by a street team, one adult at a day centre) is still one of them:
    # only a record declaring them alone now (a single-person composition or a household of
    # one) while their household had others is taken as a separation
    members_before = Counter(previous.values())
    declared_alone = set(
        records.filter(pl.col("composition").is_in(ALONE) | (pl.col("household_size") == 1))[
            "person_id"
        ].to_list()
    )
    parts: dict[int, list[int]] = defaultdict(list)
    for pid in persons:
        parts[comp.find(pid)].append(pid)
    anchor: dict[int, int] = {}  # previous household id -> a person of this month in it
    leaving: set[int] = set()  # persons declared alone now, apart from their household
    for group in parts.values():
        # a group of persons from several previous households brings in the persons seen apart
        # of those holding most of it only: one person taken for a namesake must not pull the
        # namesake's whole household in (and, month after month, chain households together)
        before = Counter(previous[p] for p in group if p in previous)
        homes = {h for h, n in before.items() if n == max(before.values())}
        separated = (
            len(group) == 1
            and group[0] in declared_alone
            and any(members_before[h] > 1 for h in homes)
        )
        if separated:
            leaving.add(group[0])
            continue
        for h in homes:
            if h in anchor:
                comp.union(anchor[h], group[0])
            else:
                anchor[h] = group[0]
    next_id = next_free_id(conn, "household")
    groups: dict[int, list[int]] = defaultdict(list)
    for pid in persons:
        groups[comp.find(pid)].append(pid)
    # each previous id goes to the group holding most of its persons (a split: the largest part;
    # of equal parts, one not declared leaving, then the smallest person id: the same ids
    # whatever order the records came in)
    claims = sorted(
        (-n, hid, not leaving.isdisjoint(ps), min(ps), root)
        for root, ps in groups.items()
        for hid, n in Counter(previous[p] for p in ps if p in previous).items()
    )
    id_of: dict[int, int] = {}
    taken: set[int] = set()
    for _, hid, _, _, root in claims:
        if root not in id_of and hid not in taken:
            id_of[root] = hid
            taken.add(hid)
    aliases = []
    created = split = 0
    for root, ps in groups.items():
        old = {previous[p] for p in ps if p in previous}
        if root not in id_of:
            id_of[root], next_id = next_id, next_id + 1
            created += 1
            split += bool(old)
        aliases += [(h, id_of[root]) for h in old - {id_of[root]} if h not in taken]
    frame = pl.DataFrame(
        {"household_id": [id_of[comp.find(p)] for p in persons], "person_id": persons},
        schema={"household_id": pl.Int64, "person_id": pl.Int64},
    )
    churn = {
        ("household", "created"): created,
        ("household", "merged"): len(aliases),
        ("household", "split"): split,
    }
    return frame, aliases, churn


def write_month(conn: duckdb.DuckDBPyConnection, result: MonthIdentity) -> None:
    """Delete-then-insert of the month in every identity table, in one transaction."""
    month = result.month
    links = result.links.with_columns(pl.lit(month).alias("month"))
    households = result.households.with_columns(pl.lit(month).alias("month"))
    frames = {
        "person_aliases": pl.DataFrame(
            result.person_aliases,
            schema={"alias_id": pl.Int64, "person_id": pl.Int64},
            orient="row",
        ),
        "household_aliases": pl.DataFrame(
            result.household_aliases,
            schema={"alias_id": pl.Int64, "household_id": pl.Int64},
            orient="row",
        ),
        "churn": pl.DataFrame(
            [(e, k, n) for (e, k), n in result.churn.items()],
            schema={"entity": pl.String, "kind": pl.String, "n": pl.Int64},
            orient="row",
        ),
    }
    estimated = [result.estimate] if result.estimate is not None else []
    frames["models"] = pl.DataFrame(  # empty when not re-estimated: a re-run leaves no stale row
        {
            "records": [e.records for e in estimated],
            "accepted": [e.accepted for e in estimated],
            "problems": ["; ".join(e.problems) for e in estimated],
            "model": [json.dumps(e.model, sort_keys=True) for e in estimated],
        },
        schema={
            "records": pl.Int64,
            "accepted": pl.Boolean,
            "problems": pl.String,
            "model": pl.String,
        },
    )
    frames = {k: v.with_columns(pl.lit(month).alias("month")) for k, v in frames.items()}
    frames.update(person_links=links, households=households)
    warehouse.replace_month(conn, month, {f"identity.{t}": f for t, f in frames.items()})
