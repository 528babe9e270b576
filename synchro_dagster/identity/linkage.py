"""Probabilistic linkage of records on keyed tokens: Fellegi-Sunter scoring with Splink on DuckDB.

The model is data: comparisons and blocking rules are declared here, the
trained parameters live in `model.json` beside this file (with when and on
what they were trained), and every monthly run reloads them. Comparisons are
exact equalities of tokens — a typo cannot be measured on a hash, so each
kind of typing accident has its own token (phonetic code, first part of a
compound first name, name without particles, birth name, swapped birth date,
month-day without the year) and its own level.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on
from splink.blocking_rule_library import CustomRule

from synchro_dagster.identity.tokens import TOKEN_COLUMNS
from synchro_dagster.sources import all_sources

MODEL_PATH = Path(__file__).with_name("model.json")
# pairs above this probability are the same person: the best F1 with precision >= 0.99 on the
# demo territory (bench/linkage.py; 0.7, 0.8, 0.9 and 0.95 measured)
MATCH_THRESHOLD = 0.8
# sources whose household listing names each person once a month (`Source.lists_person_once`)
LISTED_ONCE = frozenset(s.id for s in all_sources().values() if s.lists_person_once)
# what the model reads: the identity tokens (the partner's record number aside), sex, and the
# partner household token (a comparison, and the block birth-date noise is trained on)
LINK_COLUMNS = (
    "record_id",
    *(c for c in TOKEN_COLUMNS if c not in ("record_token", "household_token")),
    "sex",
    "age_band",
    "household_token",
)

for noisy in ("splink", "splink.internals"):
    logging.getLogger(noisy).setLevel(logging.WARNING)
# the saved model leaves a few m values at Splink's defaults on purpose (levels the training
# data never showed): Splink's warning about it, at every predict(), says nothing new
logging.getLogger("splink.internals.linker").setLevel(logging.ERROR)
# likewise EM's note on those levels, at every re-estimation on a territory
logging.getLogger("splink.internals.expectation_maximisation").setLevel(logging.ERROR)


def _swapped(a: str, b: str) -> str:
    return f"({a}_l = {b}_r AND {b}_l = {a}_r)"


def _one_typo(column: str, right: str | None = None) -> str:
    """SQL: two space-joined token lists share one (`column`_l/_r, or `column` and `right`)."""
    left, right = (column, right) if right else (f"{column}_l", f"{column}_r")
    return f"list_has_any(string_split({left}, ' '), string_split({right}, ' '))"


# first and last names typed in each other's column, with one of them also mistyped: one name
# equal across the columns, the other one typo away or sounding alike across them (names, their
# typo forms and their sounds share a namespace, so tokens compare across columns)
SWAPPED_NEAR = (
    "(tok_first_l = tok_last_r AND (tok_phon_last_l = tok_phon_first_r OR "
    f"{_one_typo('tok_last_typo_l', 'tok_first_typo_r')})) OR "
    "(tok_last_l = tok_first_r AND (tok_phon_first_l = tok_phon_last_r OR "
    f"{_one_typo('tok_first_typo_l', 'tok_last_typo_r')}))"
)


# the exploded typo rules: (the list of typo forms exploded, the name they are forms of, the
# other name, equal across the pair)
TYPO_BLOCKS = (
    ("first_typo_forms", "tok_first", "tok_last"),
    ("last_typo_forms", "tok_last", "tok_first"),
)
# read to make those forms (`_linking_forms`), not by Splink: the lists of every form two letters
# short are long (about a kilobyte a record), the forms another name shares are a few
FORMS_ONLY = ("tok_last_typo2", "tok_first_typo2")


def _two_typos(name: str) -> str:
    """SQL: `name` one or two typos away: the two records share one of the typo forms another
    name shares under the record's other name (`_linking_forms`: every such pair when the other
    name is the same; the other name's agreement is its own comparison's, not counted here
    again). Below the one-typo level, what it adds is the names two typos apart."""
    (forms,) = [f for f, n, _ in TYPO_BLOCKS if n == name]
    return f"list_has_any({forms}_l, {forms}_r)"


def comparisons() -> list[cl.CustomComparison]:
    last = cl.CustomComparison(
        output_column_name="last_name",
        comparison_levels=[
            cll.NullLevel("tok_last"),
            cll.ExactMatchLevel("tok_last").configure(tf_adjustment_column="tok_last"),
            cll.CustomLevel("tok_last_core_l = tok_last_core_r", "same name without particles"),
            cll.CustomLevel(
                "tok_birth_last_l = tok_last_r OR tok_last_l = tok_birth_last_r "
                "OR tok_birth_last_l = tok_birth_last_r",
                "birth name vs usage name",
            ),
            cll.CustomLevel("tok_phon_last_l = tok_phon_last_r", "sounds alike"),
            cll.CustomLevel(_one_typo("tok_last_typo"), "one typo apart"),
            cll.CustomLevel(_two_typos("tok_last"), "two typos apart"),
            # a swap is one accident, scored once, by the first-name comparison: here it says
            # nothing (counted as a disagreement, it cancelled half of the swap's evidence)
            cll.CustomLevel(
                f"{_swapped('tok_first', 'tok_last')} OR {SWAPPED_NEAR}",
                "names swapped: scored by the first-name comparison",
            ).configure(is_null_level=True),
            cll.ElseLevel(),
        ],
    )
    first = cl.CustomComparison(
        output_column_name="first_name",
        comparison_levels=[
            cll.NullLevel("tok_first"),
            cll.ExactMatchLevel("tok_first").configure(tf_adjustment_column="tok_first"),
            cll.CustomLevel(
                "tok_first_first_l = tok_first_first_r", "same first part of a compound first name"
            ),
            cll.CustomLevel(_swapped("tok_first", "tok_last"), "first and last names swapped"),
            cll.CustomLevel(SWAPPED_NEAR, "names swapped, one of them mistyped"),
            cll.CustomLevel("tok_phon_first_l = tok_phon_first_r", "sounds alike"),
            cll.CustomLevel(_one_typo("tok_first_typo"), "one typo apart"),
            cll.CustomLevel(_two_typos("tok_first"), "two typos apart"),
            cll.ElseLevel(),
        ],
    )
    birth = cl.CustomComparison(
        output_column_name="birth_date",
        comparison_levels=[
            cll.NullLevel("tok_birth_year"),
            cll.ExactMatchLevel("tok_dob"),
            cll.CustomLevel(
                "tok_dob_l = tok_dob_swapped_r OR tok_dob_swapped_l = tok_dob_r",
                "day and month swapped",
            ),
            cll.CustomLevel("tok_birth_md_l = tok_birth_md_r", "same day and month, year differs"),
            cll.CustomLevel(_one_typo("tok_dob_near"), "one of day or month differs"),
            cll.CustomLevel("tok_birth_year_l = tok_birth_year_r", "same year only"),
            cll.ElseLevel(),
        ],
    )
    sex = cl.ExactMatch("sex")
    # an age band says something only when a birth date is missing (maraudes: an estimated age)
    age = cl.CustomComparison(
        output_column_name="age_band",
        comparison_levels=[
            cll.NullLevel("age_band"),
            cll.CustomLevel(
                "tok_birth_year_l IS NOT NULL AND tok_birth_year_r IS NOT NULL",
                "both birth dates known: the band adds nothing",
            ),
            cll.ExactMatchLevel("age_band"),
            cll.ElseLevel(),
        ],
    )
    # a partner's own household reference seen again (a SI-SIAO group, an SNE number, a hotel
    # booking, a provider's file, in a later month): strong evidence of the same person when the
    # names agree too; the birth-date guard still refuses it when dates contradict
    household = cl.CustomComparison(
        output_column_name="partner_household",
        comparison_levels=[
            cll.NullLevel("household_token"),
            cll.CustomLevel("household_token_l = household_token_r", "same partner household"),
            cll.ElseLevel(),
        ],
    )
    return [last, first, birth, sex, age, household]


BLOCKING_RULES = (
    block_on("tok_last", "tok_birth_year"),
    block_on("tok_first", "tok_dob"),
    # the birth date alone, within one sex (or none given): at 300,000 households 14.2 M
    # candidate pairs instead of 26.4 M, the same recall on both profiles and FEBRL4
    CustomRule("l.tok_dob = r.tok_dob AND l.sex IS NOT DISTINCT FROM r.sex"),
    block_on("tok_name_sorted"),
    block_on("tok_phon_last", "tok_phon_first"),
    block_on("tok_last_core", "tok_first_first"),
    block_on("tok_birth_last", "tok_first_first"),
    block_on("household_token", "tok_first_first"),
    block_on("household_token", "tok_phon_first"),
    # one or two typos in one name, the other name exact: the keyed forms one or two letters
    # short, one per row
    *(block_on(other, forms, arrays_to_explode=[forms]) for forms, _, other in TYPO_BLOCKS),
    # names swapped and one mistyped, with or without a birth date: one name equal across the
    # columns and the other's sound (each direction: the pair is scored once, l before r)
    CustomRule("l.tok_first = r.tok_last AND l.tok_phon_last = r.tok_phon_first"),
    CustomRule("l.tok_last = r.tok_first AND l.tok_phon_first = r.tok_phon_last"),
)


def settings() -> SettingsCreator:
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="record_id",
        comparisons=comparisons(),
        blocking_rules_to_generate_predictions=list(BLOCKING_RULES),
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )


def _linking_forms(records: pl.DataFrame, forms: str, name: str, other: str) -> pl.DataFrame:
    """record_id -> `forms`: the typo forms (one or two letters short) of its `name` that another
    name, with the same `other` name, shares among `records`. Two records whose names differ by
    one or two typos share one of these; a form no other name has would only pair records of
    the same name again, pairs the sorted-name rule already makes (at 300,000 households: 226 M
    such candidate pairs). Worked out on the distinct pairs of names, then given to each record
    of them (a record staged before the forms two letters short were made gets them too)."""
    both = pl.concat_str(f"{name}_typo", f"{name}_typo2", separator=" ", ignore_nulls=True)
    exploded = (
        records.select(other, name, both.alias("form"))
        .drop_nulls([other, name])
        .unique()
        .with_columns(pl.col("form").str.split(" "))
        .explode("form")
        .filter(pl.col("form") != "")  # a record staged before any typo form: none (not "")
        .unique()
    )
    shared = exploded.group_by(other, "form").len().filter(pl.col("len") > 1).drop("len")
    kept = (
        exploded.join(shared, on=[other, "form"], how="semi")
        .group_by(other, name)
        .agg(pl.col("form").unique().sort().alias(forms))
    )
    return (
        records.select("record_id", other, name)
        .join(kept, on=[other, name])
        .select("record_id", forms)
    )


def link_frame(records: pl.DataFrame) -> pl.DataFrame:
    """What Splink reads: `LINK_COLUMNS` (and `is_new` if there is one), and for the exploding
    typo rules each record's typo forms another name shares (`_linking_forms`)."""
    columns = [*LINK_COLUMNS, *(["is_new"] if "is_new" in records.columns else [])]
    frame = records.select(c for c in columns if c not in FORMS_ONLY)
    for forms, name, other in TYPO_BLOCKS:
        frame = frame.join(
            _linking_forms(records, forms, name, other),
            on="record_id",
            how="left",
            maintain_order="left",  # bench/linkage.py puts the truth beside it, row for row
        )
    return frame


def _register(api: DuckDBAPI, frame: pl.DataFrame, name: str = "link_input"):
    """`frame` (a `link_frame`) as DuckDB table `name` of `api`'s connection, and Splink's
    handle on it."""
    conn = api.duckdb_con
    conn.register("_link_input", frame)
    conn.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _link_input")
    conn.unregister("_link_input")
    return api.register(name)


# Splink's own database holds the scored records and their pairs: beyond this it spills to a
# temporary folder instead of growing (a large territory's month stays within its machine)
# (10,000 households, month 6 against five: 1.5 GB peak uncapped, 1.2 GB capped at 400 MB)
LINK_MEMORY = "3GB"


@contextmanager
def _linkage_database() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB for Splink, its memory capped at `LINK_MEMORY` (what does not fit
    spills to a temporary folder removed afterwards; it holds tokens only). Running out of both
    is a `LinkageCapacityError` saying so, never DuckDB's message (it quotes the SQL)."""
    with tempfile.TemporaryDirectory(prefix="synchro-link-") as spill:
        conn = duckdb.connect(
            config={
                "memory_limit": LINK_MEMORY,
                "temp_directory": spill,
                "preserve_insertion_order": False,
            }
        )
        try:
            yield conn
        except Exception as error:
            cause = error.__cause__ or error  # Splink wraps the backend's error
            full = isinstance(cause, duckdb.OutOfMemoryException) or (
                isinstance(cause, duckdb.IOException) and "No space left" in str(cause)
            )
            if full:
                raise LinkageCapacityError(Path(spill).parent) from None
            raise
        finally:
            conn.close()


PROGRESS = logging.getLogger("synchro.identity")
_SPLINK_CHUNKS = logging.getLogger("splink.internals.linker_components.inference")


class _ChunkDone(logging.Handler):
    """Splink's line at the end of each chunk ("Completed chunk 3/36 (8%) | Elapsed ...",
    counts and seconds only), passed on as identity's progress."""

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Completed chunk"):
            PROGRESS.info("scoring: %s", message.removeprefix("Completed "))
        elif record.levelno >= logging.WARNING:  # Splink's warnings go where they went
            logging.getLogger("splink").handle(record)


@contextmanager
def _chunk_progress() -> Iterator[None]:
    handler, level = _ChunkDone(), _SPLINK_CHUNKS.level
    _SPLINK_CHUNKS.addHandler(handler)
    _SPLINK_CHUNKS.setLevel(logging.INFO)
    _SPLINK_CHUNKS.propagate = False  # its other information lines stay quiet
    try:
        yield
    finally:
        _SPLINK_CHUNKS.removeHandler(handler)
        _SPLINK_CHUNKS.setLevel(level)
        _SPLINK_CHUNKS.propagate = True


class LinkageCapacityError(RuntimeError):
    """The month's candidate pairs outgrew Splink's memory cap and the temporary disk."""

    def __init__(self, folder: Path) -> None:
        super().__init__(
            f"Identity ran out of room for the month's candidate pairs: beyond its {LINK_MEMORY} "
            f"of memory, DuckDB filled the disk under {folder} with temporary files (removed "
            "since). Point TMPDIR at a larger disk for the run; the README, 'Scale', gives what "
            "a territory of each size needed. Nothing was written: the month's previous ids "
            "are unchanged."
        )


MIN_TRAINING_PAIRS = 1_000  # fewer pairs than this in a training block say nothing reliable


def _pairs_sharing(records: pl.DataFrame, columns: tuple[str, ...]) -> int:
    groups = records.drop_nulls(list(columns)).group_by(columns).len()["len"]
    return int((groups * (groups - 1) // 2).sum())


def _date_training_block(records: pl.DataFrame) -> tuple[str, ...]:
    """Pairs on which birth-date noise is measured: inside one partner household (a SI-SIAO
    group, a hotel booking...) sharing a first name, nearly all the same person, so homonyms
    do not pass for matches; where partners give no households (or too few), the same name."""
    inside = ("household_token", "tok_first_first")
    enough = _pairs_sharing(records, inside) >= MIN_TRAINING_PAIRS
    return inside if enough else ("tok_last", "tok_first")


PRIOR_RULE = ("tok_name", "tok_dob")  # the pairs the prior is counted on: typed exactly alike
PRIOR_RULE_RECALL_GUESS = 0.7  # their share of the true pairs, until the m's are estimated
PRIOR_RULE_LEVELS = ("last_name", "first_name", "birth_date")  # the rule's exact levels
# what those comparisons' null levels test: their m's count only the pairs where both records
# have these (a date given as its year only is in the birth date's m, as not exact)
PRIOR_RULE_KNOWN = ("tok_last", "tok_first", "tok_birth_year")


def prior_rule_recall(model: dict, records: pl.DataFrame) -> float:
    """The share of true pairs that `PRIOR_RULE` finds, as the model's m's say: both records
    have the columns the three comparisons need (`PRIOR_RULE_KNOWN`), and the three agree
    exactly (the m of each comparison's exact level, taken as independent)."""
    known = records.select(pl.all_horizontal(pl.col(PRIOR_RULE_KNOWN).is_not_null()).mean()).item()
    recall = known**2
    for comparison in model["comparisons"]:
        if comparison["output_column_name"] in PRIOR_RULE_LEVELS:
            levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
            recall *= levels[0].get("m_probability") or 0.0  # 0: not estimated, keep the guess
    return recall


def _fit(records: pl.DataFrame, start: dict | SettingsCreator) -> dict:
    """Unsupervised estimation from `start`: u on random pairs, m by expectation maximisation
    on two blocks (same birth date: the names' noise; `_date_training_block`: the dates'
    noise), the prior from the pairs typed exactly alike (`PRIOR_RULE`) divided by the share of
    true pairs the m's say they are (`prior_rule_recall`: a territory whose records are often
    mistyped has more true pairs than its exact ones suggest). A comparison a block fixes
    keeps the values the other block or `start` gave it."""
    with _linkage_database() as conn:
        api = DuckDBAPI(conn)
        linker = Linker(_register(api, link_frame(records)), start, log_level=logging.WARNING)
        linker.training.estimate_probability_two_random_records_match(
            [block_on(*PRIOR_RULE)], recall=PRIOR_RULE_RECALL_GUESS
        )  # where expectation maximisation starts from
        linker.training.estimate_u_using_random_sampling(max_pairs=2_000_000, seed=1)
        for block in (("tok_dob",), _date_training_block(records)):
            if _pairs_sharing(records, block) >= MIN_TRAINING_PAIRS:
                linker.training.estimate_parameters_using_expectation_maximisation(
                    block_on(*block), estimate_without_term_frequencies=True
                )
        model = linker.misc.save_model_to_json()
        # the same exact pairs over the m's share instead of the guess (Splink's own call would
        # refuse a prior above 1; here `model_problems` refuses anything above 0.2)
        if recall := prior_rule_recall(model, records):
            model["probability_two_random_records_match"] *= PRIOR_RULE_RECALL_GUESS / recall
        return model


def train(records: pl.DataFrame, description: str, path: Path = MODEL_PATH) -> dict:
    """Estimates the shipped starting point from the default settings and saves it with its
    provenance."""
    model = _fit(records, settings())
    model["synchro"] = {
        "trained_on": description,
        "trained_at": date.today().isoformat(),
        "records": records.height,
        "command": "synchro identity train",
    }
    path.write_text(json.dumps(model, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return model


def _weight(level: dict) -> float | None:
    m, u = level.get("m_probability"), level.get("u_probability")
    return None if not m or not u else math.log2(m / u)


def model_problems(model: dict) -> list[str]:
    """Why a model estimated on a territory must not be used (empty: sane). Each comparison's
    exact level must count for a match and its last level ("all other") against; probabilities
    in (0, 1]; a prior between one in a hundred million and one in five."""
    problems = []
    prior = model.get("probability_two_random_records_match") or 0.0
    if not 1e-8 < prior < 0.2:
        problems.append(f"prior {prior:.3g} outside (1e-08, 0.2)")
    for comparison in model["comparisons"]:
        name = comparison["output_column_name"]
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        for level in levels:
            for p in ("m_probability", "u_probability"):
                value = level.get(p)
                if value is not None and not 0 < value <= 1:
                    problems.append(f"{name}: {p} {value:.3g} of '{level['label_for_charts']}'")
        exact, other = _weight(levels[0]), _weight(levels[-1])
        if exact is not None and exact <= 0:
            problems.append(f"{name}: an exact match counts against ({exact:.2f} bits)")
        if other is not None and other >= 0:
            problems.append(f"{name}: a disagreement counts for a match ({other:.2f} bits)")
    return problems


@dataclass(frozen=True)
class Estimate:
    """A model re-estimated on a territory's records, and whether it may be used."""

    model: dict
    records: int  # the records it was estimated on (link_month: the whole history then)
    problems: tuple[str, ...]

    @property
    def accepted(self) -> bool:
        return not self.problems


def estimate(records: pl.DataFrame, start: dict | None = None) -> Estimate | None:
    """The model re-estimated, without labels, on these records, starting from `start` (the
    shipped model): None when they are too few to say anything (under `TF_MIN_RECORDS`)."""
    if records.height < TF_MIN_RECORDS:
        return None
    model = _fit(records, start or load_model())
    return Estimate(model, records.height, tuple(model_problems(model)))


def load_model(path: Path = MODEL_PATH) -> dict:
    """The trained parameters, with today's blocking rules (`BLOCKING_RULES`: which pairs are
    scored is code, how they score is data)."""
    model = json.loads(path.read_text(encoding="utf-8"))
    model.pop("synchro", None)
    model["blocking_rules_to_generate_predictions"] = [
        rule.get_blocking_rule("duckdb").as_dict() for rule in BLOCKING_RULES
    ]
    return model


TF_MIN_RECORDS = 1_000  # below this, name frequencies measured on the input mean nothing


def _without_term_frequencies(model: dict) -> dict:
    model = json.loads(json.dumps(model))
    for comparison in model["comparisons"]:
        for level in comparison["comparison_levels"]:
            level.pop("tf_adjustment_column", None)
            level.pop("tf_adjustment_weight", None)
    return model


TF_COLUMNS = ("tok_last", "tok_first")  # the comparisons adjusted for term frequencies


@dataclass(frozen=True)
class Frequencies:
    """How often each name occurs (`TF_COLUMNS`: value, n) among `records` records: what term
    frequency adjustments read, when only part of those records is scored."""

    records: int
    counts: dict[str, pl.DataFrame]

    @classmethod
    def of(cls, records: pl.DataFrame) -> Frequencies:
        return cls(
            records.height,
            {c: records.group_by(c).len("n").drop_nulls(c) for c in TF_COLUMNS},
        )

    def register(self, api: DuckDBAPI, linker: Linker) -> None:
        """As Splink measures them on its input (count over non-null count)."""
        for column, counts in self.counts.items():
            table = counts.select(
                column, (pl.col("n") / pl.col("n").sum()).cast(pl.Float64).alias(f"tf_{column}")
            )
            api.duckdb_con.register("_tf", table)
            api.duckdb_con.execute(f"CREATE OR REPLACE TABLE tf_{column} AS SELECT * FROM _tf")
            api.duckdb_con.unregister("_tf")
            linker.table_management.register_term_frequency_lookup(
                api.register(f"tf_{column}"), column
            )


# records per chunk on each side of Splink's join: a larger input is scored chunk against chunk,
# each keeping only its pairs above the threshold, so that the candidate pairs waiting to be
# scored (with their tokens: ~1 kB each) stay within `LINK_MEMORY` and the temporary disk
# (a Paris-sized month, 1.2 M records: 320 M candidate pairs, more than 61 GB spilled unchunked)
CHUNK_RECORDS = 200_000


def _chunks(records: int, chunk_records: int) -> int:
    return max(1, math.ceil(records / chunk_records))


def scored_pairs(
    records: pl.DataFrame,
    model: dict | None = None,
    threshold: float = MATCH_THRESHOLD,
    known: pl.DataFrame | None = None,
    frequencies: Frequencies | None = None,
    chunk_records: int = CHUNK_RECORDS,
) -> pl.DataFrame:
    """Pairs above the threshold: a < b (record ids), w (match weight), both_dated, dates_agree.

    Without `known`: the pairs among `records`. With `known` (a month linked to its history:
    one record of each spelling of each known person), the pairs among `records` and between
    them and `known`, never the pairs among `known` (a link-only join of the month against the
    month and the history, so that the work grows with the month, not with the history).
    Name frequencies are `frequencies` (default: those of the records given): the whole
    history's, not only those of the part that is scored. Inputs larger than `chunk_records`
    are scored in chunks (`CHUNK_RECORDS`); the pairs are the same.
    """
    model = json.loads(json.dumps(model or load_model()))  # the caller's model stays as it was
    if frequencies is None:
        frequencies = Frequencies.of(records if known is None else pl.concat([records, known]))
    if frequencies.records < TF_MIN_RECORDS:
        model = _without_term_frequencies(model)
    with _linkage_database() as conn:
        api = DuckDBAPI(connection=conn)
        if known is None:
            linker = Linker(_register(api, link_frame(records)), model, log_level=logging.WARNING)
        else:
            # the month's records are on both sides: each pair among them is scored once
            model["link_type"] = "link_only"
            for rule in model["blocking_rules_to_generate_predictions"]:
                rule["blocking_rule"] = (
                    f"({rule['blocking_rule']}) AND "
                    "(NOT (l.is_new AND r.is_new) OR l.record_id < r.record_id)"
                )
            against = link_frame(
                pl.concat(
                    [records.with_columns(is_new=pl.lit(True)), known.with_columns(is_new=False)]
                )
            )  # typo forms shared between the month and its history too
            tables = [
                _register(api, against.filter(pl.col("is_new")), "link_month"),
                _register(api, against, "link_against"),
            ]
            linker = Linker(tables, model, log_level=logging.WARNING)
        frequencies.register(api, linker)
        chunks = (
            _chunks(records.height, chunk_records),
            _chunks(records.height + (0 if known is None else known.height), chunk_records),
        )
        if chunks != (1, 1):
            PROGRESS.info("scoring in %d x %d chunks", *chunks)
        with _chunk_progress():
            pairs = linker.inference.predict(
                threshold_match_probability=threshold,
                num_chunks_left=chunks[0],
                num_chunks_right=chunks[1],
            )
        lookup = "link_input" if known is None else "link_against"
        swapped = _swap_frequency_bits(model, tf=frequencies.records >= TF_MIN_RECORDS)
        edges = conn.sql(f"""
            SELECT least(l.record_id, r.record_id) AS a, greatest(l.record_id, r.record_id) AS b,
                   p.match_weight + {swapped} AS w,
                   l.tok_birth_year IS NOT NULL AND r.tok_birth_year IS NOT NULL AS both_dated,
                   coalesce(CASE WHEN l.tok_dob IS NOT NULL AND r.tok_dob IS NOT NULL
                        THEN l.tok_dob = r.tok_dob OR l.tok_dob = r.tok_dob_swapped
                             OR l.tok_dob_swapped = r.tok_dob
                             OR {_one_typo("l.tok_dob_near", "r.tok_dob_near")}
                        ELSE l.tok_birth_year = r.tok_birth_year END, false) AS dates_agree
            FROM {pairs.physical_name} p
            JOIN {lookup} l ON l.record_id = p.record_id_l
            JOIN {lookup} r ON r.record_id = p.record_id_r
            {_SWAP_FREQUENCIES if swapped != "0" else ""}
            {"" if threshold <= 0 else f"WHERE p.match_weight + {swapped} >= {_bits(threshold)!r}"}
        """).pl()
    return edges


SWAP_LEVEL = "first and last names swapped"
# each side's names as typed, in the columns they were typed in: how often a record is named so
_SWAP_FREQUENCIES = """
    LEFT JOIN tf_tok_first fl ON fl.tok_first = l.tok_first
    LEFT JOIN tf_tok_last ll ON ll.tok_last = l.tok_last
    LEFT JOIN tf_tok_first fr ON fr.tok_first = r.tok_first
    LEFT JOIN tf_tok_last lr ON lr.tok_last = r.tok_last
"""


def _swap_frequency_bits(model: dict, tf: bool) -> str:
    """SQL: the bits a pair of exactly swapped names gains from the names' frequencies, as the
    exact levels gain theirs (Splink adjusts exact levels only). Its level's u is the average
    over all names; for these names, the other hypothesis (two persons) must explain a record
    named (L, F) beside one named (F, L): the rarer of the two namings is a genuine person so
    named (frequency `min`) or a swap of another (F, L) person (m of the level x `max`). Where
    surnames are never first names the swapped pair weighs as an exact one; where "MARTIN
    THOMAS" and "THOMAS MARTIN" are both common, as little as Splink's level says. "0" when the
    model has no such level or frequencies are not used (`TF_MIN_RECORDS`)."""
    levels = [
        lv
        for c in model["comparisons"]
        if c["output_column_name"] == "first_name"
        for lv in c["comparison_levels"]
        if lv.get("label_for_charts") == SWAP_LEVEL
    ]
    if not (tf and levels and levels[0].get("m_probability") and levels[0].get("u_probability")):
        return "0"
    m, u = levels[0]["m_probability"], levels[0]["u_probability"]
    named_l = "fl.tf_tok_first * ll.tf_tok_last"
    named_r = "fr.tf_tok_first * lr.tf_tok_last"
    other = f"least({named_l}, {named_r}) + {m!r} * greatest({named_l}, {named_r})"
    return (
        "coalesce(CASE WHEN l.tok_first = r.tok_last AND l.tok_last = r.tok_first "
        f"AND l.tok_first <> r.tok_first THEN log2({u!r} / ({other})) END, 0)"
    )


def guarded(edges: pl.DataFrame) -> list[tuple[int, int, float]]:
    """The pairs clustering may join (a, b, weight), heaviest first: two records whose birth
    dates are both known and disagree beyond any typing accident are never joined directly, and
    `Components` keeps clusters apart when their markers say two persons, so that records
    without a birth date cannot chain homonyms."""
    agree = edges.filter(~pl.col("both_dated") | pl.col("dates_agree").fill_null(False))
    return sorted(agree.select("a", "b", "w").iter_rows(), key=lambda e: (-e[2], e[0], e[1]))


AMBIGUITY_BITS = 1.0  # two candidates whose weights are this close fit a record equally


def ambiguous(
    edges: list[tuple[int, int, float]],
    node_of: dict[int, int],
    marks: dict[int, Markers],
    records: Iterable[int],
    prefer: Callable[[int, set[int]], set[int]] | None = None,
    last_seen: dict[int, date] | None = None,
) -> tuple[dict[int, bool], list[tuple[int, int, float]], dict[int, list[int]]]:
    """Records that fit several distinct persons equally (an undated record of a name two dated
    persons share), and the edges left to cluster. For each of `records`, the nodes it is paired
    with (`node_of`: a record's node, a known person) within `AMBIGUITY_BITS` of its best are
    its candidates. When two candidates' markers say two persons, `prefer(record, candidates)`
    (household context) may name the ones to keep; if it does not settle it, the record is
    ambiguous and joins only one candidate: the one seen last (`last_seen`: the one a street
    team or a 115 call most likely met again), a known person before another of `records`;
    between candidates seen last in the same month, the heaviest pair, then the oldest id — a
    tie, counted as such. The record never chains the candidates together. Returns {ambiguous
    record: settled by recency (False: a tie)}, the edges left, and each ambiguous record's
    candidates in that order (`Components.join_first`, after the edges left: when the month's
    other records show the first to be another person — its namesake listed in the same
    household — the record is the next one, not a person of its own)."""
    best: dict[int, dict[int, float]] = defaultdict(dict)
    wanted = set(records)
    for a, b, w in edges:
        for r, other in ((a, b), (b, a)):
            if r in wanted:
                node = node_of.get(other, other)
                best[r][node] = max(w, best[r].get(node, w))
    dropped: dict[int, set[int]] = {}  # record -> candidate nodes it may not join
    unsure: dict[int, bool] = {}
    choices: dict[int, list[int]] = {}

    def one_person(nodes: set[int]) -> bool:
        ordered = sorted(nodes)
        return all(
            marks.get(x, Markers()).compatible(marks.get(y, Markers()))
            for i, x in enumerate(ordered)
            for y in ordered[i + 1 :]
        )

    for r, weights in best.items():
        top = max(weights.values())
        near = {n for n, w in weights.items() if w >= top - AMBIGUITY_BITS}
        if one_person(near):
            continue
        kept = prefer(r, near) if prefer else set()
        if not (kept and one_person(kept)):
            # a record of the month is "seen last" by construction: a known person, when one
            # fits as well, is the likelier one (two records of the month together would only
            # start a namesake's fragment)
            pool = {n for n in near if n not in wanted} or near
            seen = {n: last_seen[n] for n in pool if last_seen and n in last_seen}
            latest = [n for n in seen if seen[n] == max(seen.values())] if seen else []
            unsure[r] = len(latest) == 1
            choices[r] = sorted(
                near,
                key=lambda n: (n in pool, seen.get(n, date.min), weights[n], -n),
                reverse=True,
            )
            kept = set()  # joined after the edges left (`Components.join_first`)
        dropped[r] = set(weights) - kept

    def kept(a: int, b: int) -> bool:
        return node_of.get(b, b) not in dropped.get(a, ())

    left = [(a, b, w) for a, b, w in edges if kept(a, b) and kept(b, a)]
    return unsure, left, choices


@dataclass(frozen=True)
class Markers:
    """What tells two persons apart, for a record or a cluster of records: its birth-date
    tokens, and the household listings it appears in (household token and month, in a source
    that lists each person of a household once a month: `Source.lists_person_once`)."""

    dates: frozenset[str] = frozenset()  # full dates, as typed and with day and month swapped
    near: frozenset[str] = frozenset()  # full dates with one field left out (`tok_dob_near`)
    years: frozenset[str] = frozenset()
    listings: frozenset[str] = frozenset()

    def compatible(self, other: Markers) -> bool:
        """False for two persons: both have birth dates and none agree as a pair's dates do
        (`scored_pairs`: full dates equal, swapped or one field apart when both sides have
        one; else a year in common), or both appear in one household listing."""
        if self.listings & other.listings:
            return False
        if self.near and other.near:
            return bool(self.dates & other.dates or self.near & other.near)
        if self.years and other.years:
            return bool(self.years & other.years)
        return True

    def __or__(self, other: Markers) -> Markers:
        return Markers(
            self.dates | other.dates,
            self.near | other.near,
            self.years | other.years,
            self.listings | other.listings,
        )


def markers(records: pl.DataFrame, by: str = "record_id") -> dict[int, Markers]:
    """`by` (default: record_id) -> the markers of its records, for those that have any.
    Listings need the records' `source` and `month`."""
    listed = pl.lit(None, pl.String).alias("listing")
    if {"source", "month"} <= set(records.columns):
        listed = (
            pl.when(pl.col("source").is_in(sorted(LISTED_ONCE)))
            .then(pl.concat_str("household_token", pl.col("month").cast(pl.String), separator="|"))
            .alias("listing")
        )
    rows = records.select(
        by,
        pl.concat_list("tok_dob", "tok_dob_swapped").alias("dates"),
        pl.col("tok_dob_near")
        .str.split(" ")
        .list.eval(pl.element().filter(pl.element() != ""))
        .alias("near"),
        "tok_birth_year",
        listed,
    ).filter(pl.col("tok_birth_year").is_not_null() | pl.col("listing").is_not_null())
    grouped = rows.group_by(by).agg(
        pl.col("dates").list.explode(keep_nulls=False, empty_as_null=False).drop_nulls().unique(),
        pl.col("near").list.explode(keep_nulls=False, empty_as_null=False).drop_nulls().unique(),
        pl.col("tok_birth_year").drop_nulls().unique(),
        pl.col("listing").drop_nulls().unique(),
    )
    return {
        key: Markers(frozenset(dates), frozenset(near), frozenset(years), frozenset(listings))
        for key, dates, near, years, listings in grouped.iter_rows()
    }


class Components:
    """Union-find; a component is named by its smallest member. Members may carry `Markers`:
    two components whose markers say they are two persons never join (a record without a birth
    date, or a run of them, cannot chain a father to his namesake son)."""

    def __init__(self, marks: dict[int, Markers] | None = None) -> None:
        self.parent: dict[int, int] = {}
        self.marks: dict[int, Markers] = dict(marks or {})
        self.members: dict[int, list[int]] = {}  # root -> its members, for roots of several

    def find(self, x: int) -> int:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int, force: bool = False) -> bool:
        """Join the components of a and b unless their markers keep them apart (`force`: a
        correction says they are one); True if they were joined now."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        ma, mb = self.marks.get(ra, Markers()), self.marks.get(rb, Markers())
        if not force and not ma.compatible(mb):
            return False
        keep, gone = min(ra, rb), max(ra, rb)
        self.parent[gone] = keep
        self.marks.pop(gone, None)
        self.marks[keep] = ma | mb
        self.members[keep] = self.members.get(keep, [keep]) + self.members.pop(gone, [gone])
        return True

    def join_first(self, choices: dict[int, list[int]], node_of: dict[int, int]) -> None:
        """Each record of `choices` joins the first of its candidates (nodes) its markers allow,
        and only that one; a record already with one of them stays."""
        for record in sorted(choices):
            node = node_of.get(record, record)
            for candidate in choices[record]:
                if self.find(node) == self.find(candidate) or self.union(node, candidate):
                    break

    def size(self, root: int) -> int:
        return len(self.members.get(root, [root]))

    def last_seen(self, root: int, seen: dict[int, date] | None) -> date:
        """The latest month any member was seen (`seen`: member -> month)."""
        months = [seen[m] for m in self.members.get(root, [root]) if seen and m in seen]
        return max(months, default=date.min)


# pairs this likely are kept to tell whether a record is one of several known namesakes
WEAK_THRESHOLD = 0.2


def _bits(probability: float) -> float:
    """The match weight of a match probability."""
    return math.log2(probability / (1 - probability))


def _probability(weight: float) -> float:
    return 1 / (1 + 2**-weight)


def split_by_strength(
    edges: pl.DataFrame, threshold: float = MATCH_THRESHOLD
) -> tuple[list[tuple[int, int, float]], list[tuple[int, int, float]]]:
    """The guarded pairs at or above the match threshold, and the weaker ones."""
    pairs = guarded(edges)
    weight = _bits(threshold)
    return [e for e in pairs if e[2] >= weight], [e for e in pairs if e[2] < weight]


def one_of_several(
    comp: Components,
    weak: list[tuple[int, int, float]],
    node_of: dict[int, int],
    records: Iterable[int],
    last_seen: dict[int, date] | None = None,
    threshold: float = MATCH_THRESHOLD,
    known: Callable[[int], bool] = lambda node: False,
) -> int:
    """Records still alone after clustering whose weak pairs, taken together over the distinct
    persons they point to, say they are one of them (a common name shared by several known
    persons: each pair weak, together likely): each joins the person seen last among them (then
    the likeliest). The pairs combine as odds against "none of them" (the record is at most one
    person): Σo / (1 + Σo) must reach `threshold`. A candidate is a person already: several
    records, or a `known` node (a person of earlier months). Another record left alone is not:
    counting this month's lone records of a common name let one dated person absorb the undated
    records of a dozen namesakes, and bridge their households. Returns how many joined."""
    candidates: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for a, b, w in weak:
        for x, y in ((a, b), (b, a)):
            candidates[node_of.get(x, x)].append((node_of.get(y, y), _probability(w)))
    joined = 0
    for node in sorted({node_of.get(r, r) for r in records}):
        if comp.find(node) != node or comp.size(node) > 1 or node not in candidates:
            continue  # joined by clustering, or by this pass already
        mark = comp.marks.get(node, Markers())
        by_root: dict[int, float] = {}
        for other, p in candidates[node]:
            root = comp.find(other)
            if root == node or not comp.marks.get(root, Markers()).compatible(mark):
                continue
            members = comp.members.get(root, [root])
            if len(members) > 1 or any(known(m) for m in members):
                by_root[root] = max(p, by_root.get(root, 0.0))
        odds = sum(p / (1 - p) for p in by_root.values())
        if odds / (1 + odds) < threshold:
            continue
        target = max(by_root, key=lambda r: (comp.last_seen(r, last_seen), by_root[r], -r))
        joined += comp.union(node, target)
    return joined


def cluster(
    records: pl.DataFrame, model: dict | None = None, threshold: float = MATCH_THRESHOLD
) -> pl.DataFrame:
    """record_id -> cluster_id (the smallest record_id of its cluster: not stable across runs)."""
    strong, weak = split_by_strength(scored_pairs(records, model, WEAK_THRESHOLD), threshold)
    marks = markers(records)
    ids = records["record_id"].to_list()
    seen = dict(records.select("record_id", "month").iter_rows()) if "month" in records else None
    _, edges_left, choices = ambiguous(strong, {}, marks, ids, last_seen=seen)
    comp = Components(marks)
    for a, b, _ in edges_left:
        comp.union(a, b)
    comp.join_first(choices, {})
    one_of_several(comp, weak, {}, ids, seen, threshold)
    dtype = records.schema["record_id"]
    return pl.DataFrame(
        {"record_id": ids, "cluster_id": [comp.find(i) for i in ids]},
        schema={"record_id": dtype, "cluster_id": dtype},
    )
