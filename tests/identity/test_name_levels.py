"""The level a pair's names reach in the name comparisons, as Splink reads them (the first level
whose SQL holds), on the tokens ingestion makes: names one or two typing accidents apart."""

from __future__ import annotations

import math
import random

import duckdb
import polars as pl
import pytest

from synchro_dagster.identity import linkage
from synchro_dagster.identity.tokens import identity_inputs, tokenise

KEY = b"name-levels-test-key-0123456789abcdef"
OTHER = "DIALLO"  # the other name, equal on both records
ELSE = "All other comparisons"
SWAP = linkage.SWAP_LEVEL
PAIRS = [  # a name on one record, on the other, and the level they reach
    ("FATOUMATA", "FATOUMTA", "one typo apart"),
    ("FATOUMATA", "FETOUMATO", "two typos apart"),  # two substitutions
    ("FATOUMATA", "FETOUMAT", "two typos apart"),  # a substitution and a deletion
    ("FETOUMAT", "FATOUMATA", "two typos apart"),  # ... an insertion, seen from the other side
    ("CHRISTINE", "CRISTIE", "two typos apart"),  # two deletions
    ("CRISTIE", "CHRISTINE", "two typos apart"),
    ("FATOUMATA", "AFTOUMATE", "two typos apart"),  # a transposition and a substitution
    ("SALOME", "SALIM", "two typos apart"),  # six letters, the shortest with such forms
    ("FATOUMATA", "FETOUMETO", ELSE),  # three substitutions
    ("FANTA", "FENTO", ELSE),  # five letters: two typos leave too little of them
    ("A" * 41, "B" + "A" * 39 + "B", ELSE),  # beyond 40 letters, no form two letters short
]


def levels(comparison: str, pairs: pl.DataFrame) -> list[str]:
    """The label of the level each pair (`<token>_l`, `<token>_r` columns) reaches."""
    (compared,) = (
        c.get_comparison("duckdb")
        for c in linkage.comparisons()
        if c.get_comparison("duckdb").output_column_name == comparison
    )
    labels = [level.label_for_charts for level in compared.comparison_levels]
    whens = " ".join(
        f"WHEN {level.sql_condition} THEN {i}"
        for i, level in enumerate(compared.comparison_levels)
        if level.sql_condition != "ELSE"
    )
    with duckdb.connect() as conn:
        conn.register("pairs", pairs)
        reached = conn.sql(f"SELECT CASE {whens} ELSE {len(labels) - 1} END FROM pairs").fetchall()
    return [labels[i] for (i,) in reached]


def tokens_of(column: str, names: list[tuple[str, str]]) -> pl.DataFrame:
    """Two records per pair, the names given in `column` ("last_name" or "first_name"), the
    other name `OTHER`: the left records, then the right ones, with their tokens."""
    other = "first_name" if column == "last_name" else "last_name"
    rows = [{column: pair[i], other: OTHER} for i in (0, 1) for pair in names]
    return tokenise(identity_inputs(rows), KEY).with_columns(
        pl.int_range(1, 2 * len(names) + 1, dtype=pl.Int64).alias("record_id"),
        pl.lit(None, pl.String).alias("sex"),
        pl.lit(None, pl.String).alias("age_band"),
    )


def pairs_of(records: pl.DataFrame) -> pl.DataFrame:
    """What Splink reads of each record (`link_frame`: the typo forms another name shares
    among them), the left and right records of each pair side by side."""
    frame = linkage.link_frame(records)
    half = frame.height // 2
    return pl.concat(
        [
            frame.head(half).rename(lambda c: f"{c}_l"),
            frame.tail(half).rename(lambda c: f"{c}_r"),
        ],
        how="horizontal",
    )


@pytest.mark.parametrize("column", ["first_name", "last_name"])
def test_names_one_or_two_typos_apart_reach_their_level(column):
    records = tokens_of(column, [(a, b) for a, b, _ in PAIRS])
    assert levels(column, pairs_of(records)) == [level for _, _, level in PAIRS]

    # records staged before the forms two letters short existed (null): never two typos apart
    # with each other, and nothing else changes
    name = "tok_first" if column == "first_name" else "tok_last"
    before = records.with_columns(pl.lit(None, pl.String).alias(f"{name}_typo2"))
    expected = [ELSE if level == "two typos apart" else level for _, _, level in PAIRS]
    assert levels(column, pairs_of(before)) == expected


def test_swapped_names_weigh_by_how_often_each_naming_occurs():
    """Splink's swapped level has one u for all names. A record named (TRAORE, AMINATA) beside
    (AMINATA, TRAORE), where no one else is so named, is a swap far more likely than its level
    says: it weighs within a few bits of the exact pair. Where both namings are common (MARTIN
    THOMAS and THOMAS MARTIN, ten of each), two persons are likely and it weighs much less."""
    rng = random.Random(3)

    def word() -> str:
        return "".join(rng.choice("BCDFGKLMNPRSTVZ") + rng.choice("AEIOU") for _ in range(4))

    rows = [{"first_name": word(), "last_name": word()} for _ in range(1_200)]
    names = [
        ("AMINATA", "TRAORE"),
        ("TRAORE", "AMINATA"),  # swapped
        ("AMINATA", "TRAORE"),  # exact
        *[("MARTIN", "THOMAS"), ("THOMAS", "MARTIN")] * 10,
    ]
    rows += [{"first_name": f, "last_name": last} for f, last in names]
    records = tokenise(identity_inputs(rows), KEY).with_columns(
        pl.int_range(1, len(rows) + 1, dtype=pl.Int64).alias("record_id"),
        pl.lit(None, pl.String).alias("sex"),
        pl.lit(None, pl.String).alias("age_band"),
    )
    pairs = linkage.scored_pairs(records, threshold=0.0)
    w = {(a, b): w for a, b, w in pairs.select("a", "b", "w").iter_rows()}
    aminata, swapped, exact, martin, thomas = 1201, 1202, 1203, 1204, 1205
    model = linkage.load_model()
    (first,) = (c for c in model["comparisons"] if c["output_column_name"] == "first_name")
    (level,) = (lv for lv in first["comparison_levels"] if lv["label_for_charts"] == SWAP)
    splink_bits = math.log2(level["m_probability"] / level["u_probability"])
    exact_bits, swap_bits = w[(aminata, exact)], w[(aminata, swapped)]
    prior = math.log2(model["probability_two_random_records_match"])
    assert exact_bits - 4 < swap_bits < exact_bits
    # measured: exact 6.3, swapped 3.6 (the level alone: -0.5), MARTIN THOMAS -3.0; the gain
    # grows with the territory (undated swapped pairs of the default one: 0.5 -> 7.5 bits)
    assert swap_bits > prior + splink_bits + 3
    assert w[(martin, thomas)] < swap_bits - 5
