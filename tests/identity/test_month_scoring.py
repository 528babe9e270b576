"""A month is scored against one record of each spelling of each known person, never against
the whole history: the pairs it finds must be those the whole history would give."""

from __future__ import annotations

import logging
import math
import random
from datetime import date

import duckdb
import polars as pl
import pytest
from splink.internals.exceptions import SplinkException
from stagekit import identities

from synchro_dagster.identity import linkage
from synchro_dagster.identity.linkage import (
    WEAK_THRESHOLD,
    Frequencies,
    LinkageCapacityError,
    _linkage_database,
    scored_pairs,
)
from synchro_dagster.identity.persons import PROFILE
from synchro_dagster.identity.tokens import tokenise


def _records(persons: int, months: int, seed: int) -> pl.DataFrame:
    """Each person once a month, typed as the month before or, one time in four, with a new
    typo in the first name; a few namesakes (same names, another birth date)."""
    rng = random.Random(seed)
    letters = "ABCDEFGHIJKLMNOPRSTUVZ"
    people = []
    for i in range(persons):
        last = "".join(rng.choice(letters) for _ in range(6))
        if i % 10 == 9:  # a namesake of the person before
            last, first = people[-1][0], people[-1][1]
        else:
            first = "".join(rng.choice(letters) for _ in range(6))
        born = date(1950 + rng.randrange(60), 1 + rng.randrange(12), 1 + rng.randrange(28))
        people.append((last, first, born))
    rows, person, month = [], [], []
    for m in range(months):
        for i, (last, first, born) in enumerate(people):
            if rng.random() < 0.25:
                cut = rng.randrange(len(first))
                first = first[:cut] + rng.choice(letters) + first[cut + 1 :]
                people[i] = (last, first, born)
            rows.append((last, first, born, f"H{i}"))
            person.append(i)
            month.append(m)
    tokens = tokenise(identities(rows), b"k" * 32)
    return tokens.with_columns(
        pl.Series("record_id", range(1, len(rows) + 1), dtype=pl.Int64),
        pl.Series("person", person),
        pl.Series("month", month),
        pl.lit(None, pl.String).alias("sex"),
        pl.lit(None, pl.String).alias("age_band"),
    )


def _best(edges: pl.DataFrame, records: pl.DataFrame, new: pl.DataFrame) -> dict:
    """(record of the month, the other side's person or record of the month) -> best weight."""
    person = dict(records.select("record_id", "person").iter_rows())
    month = set(new["record_id"].to_list())
    best: dict[tuple[int, object], float] = {}
    for a, b, w in edges.select("a", "b", "w").iter_rows():
        for r, other in ((a, b), (b, a)):
            if r in month:
                key = (r, other if other in month else person[other])
                best[key] = max(w, best.get(key, w))
    return best


def test_one_record_per_spelling_finds_the_pairs_of_the_whole_history():
    records = _records(persons=300, months=4, seed=11)  # 1,200 records: name frequencies apply
    new = records.filter(pl.col("month") == 3)
    history = records.filter(pl.col("month") < 3)
    spellings = history.unique(["person", *PROFILE], keep="first", maintain_order=True)
    assert spellings.height < 0.7 * history.height  # the point: far fewer records scored

    whole = scored_pairs(records, threshold=WEAK_THRESHOLD)
    month = scored_pairs(
        new, threshold=WEAK_THRESHOLD, known=spellings, frequencies=Frequencies.of(records)
    )
    expected = _best(whole, records, new)
    found = _best(month, records, new)
    assert found.keys() == expected.keys()
    assert max(abs(found[k] - expected[k]) for k in expected) < 1e-9
    # each pair scored once (the month's records are on both sides of the link), none twice
    assert (month["a"] < month["b"]).all() and month.select("a", "b").is_unique().all()
    # and none of the history's pairs among themselves were scored again
    old = set(history["record_id"].to_list())
    assert not any(a in old and b in old for a, b in month.select("a", "b").iter_rows())


def test_a_month_scored_in_chunks_finds_the_same_pairs_with_the_same_weights(caplog):
    """A large month is scored chunk against chunk (`CHUNK_RECORDS`): nothing found whole is
    lost or scored twice, alone and against its history; each chunk done is said."""
    records = _records(persons=200, months=3, seed=5)
    new = records.filter(pl.col("month") == 2)
    known = records.filter(pl.col("month") < 2)
    frequencies = Frequencies.of(records)
    for month, history in ((records, None), (new, known)):
        whole = scored_pairs(
            month, threshold=WEAK_THRESHOLD, known=history, frequencies=frequencies
        ).sort("a", "b")
        caplog.clear()
        with caplog.at_level(logging.INFO, "synchro.identity"):
            chunked = scored_pairs(
                month,
                threshold=WEAK_THRESHOLD,
                known=history,
                frequencies=frequencies,
                chunk_records=70,  # 3 to 9 chunks a side
            ).sort("a", "b")
        said = [r.getMessage() for r in caplog.records if r.name == "synchro.identity"]
        sides = 9 if history is None else 3  # 600 records, or 200 against 600
        assert said[0] == f"scoring in {sides} x 9 chunks"
        assert said[-1].startswith(f"scoring: chunk {sides * 9}/{sides * 9} (100%)")
        assert len(said) == 1 + sides * 9
        assert whole.height > 300
        assert chunked.select("a", "b").equals(whole.select("a", "b"))
        assert (chunked["w"] - whole["w"]).abs().max() < 1e-9


@pytest.mark.parametrize(
    ("forms", "name", "other"), linkage.TYPO_BLOCKS, ids=["first_typo", "last_typo"]
)
def test_only_typo_forms_another_name_shares_are_exploded_and_no_pair_is_lost(
    monkeypatch, forms, name, other
):
    """The typo rules explode, for each record, only the typo forms (one or two letters short)
    of its name that another name (with the same other name) shares: every pair of names one or
    two typos apart still shares one, and every pair blocked (whatever its score), alone or
    against the history (forms shared across the two), is one that exploding every form
    blocks."""
    records = _records(persons=200, months=3, seed=7)  # typos in first names
    if name == "tok_last":  # ... typed in the last name's columns instead
        swap = {
            "tok_first": "tok_last",
            "tok_first_typo": "tok_last_typo",
            "tok_first_typo2": "tok_last_typo2",
        }
        records = records.rename({**swap, **{v: k for k, v in swap.items()}})
    frame = linkage.link_frame(records)
    shared = dict(frame.select("record_id", forms).iter_rows())

    def every(name: str) -> pl.Expr:
        both = pl.concat_str(f"{name}_typo", f"{name}_typo2", separator=" ", ignore_nulls=True)
        return both.str.split(" ")

    one = pl.col(f"{name}_typo").str.split(" ")
    typo = records.select("record_id", other, name, every(name), one.alias("one")).rows()
    apart = twice = 0
    for i, (a, other_a, name_a, forms_a, one_a) in enumerate(typo):
        for b, other_b, name_b, forms_b, one_b in typo[i + 1 :]:
            if other_a == other_b and name_a != name_b and set(forms_a) & set(forms_b):
                apart += 1
                twice += not set(one_a) & set(one_b)
                assert set(shared[a]) & set(shared[b])
    assert apart > 20 and twice > 5  # the names one or two typos apart the test is about
    exploded = frame[forms].list.len().fill_null(0).sum()
    assert exploded < 0.2 * records.select(every(name).list.len()).to_series().sum()

    new, known = records.filter(pl.col("month") == 2), records.filter(pl.col("month") < 2)
    frequencies = Frequencies.of(records)

    def blocked() -> list[pl.DataFrame]:
        return [
            scored_pairs(m, threshold=0.0, known=h, frequencies=frequencies)
            .select("a", "b")
            .sort("a", "b")
            for m, h in ((records, None), (new, known))
        ]

    found = blocked()

    def every_form(records, forms, name, other):
        return records.select("record_id", every(name).alias(forms))

    monkeypatch.setattr(linkage, "_linking_forms", every_form)
    for mine, expected in zip(found, blocked(), strict=True):
        assert mine.equals(expected)


@pytest.mark.parametrize(("forms", "name", "other"), linkage.TYPO_BLOCKS)
def test_a_name_staged_without_typo_forms_is_exploded_on_none(forms, name, other):
    """Records staged before a kind of typo form existed hold a name but no forms (null): they
    share no form with anyone, rather than one empty form that would block every two records
    of the other name (all the DIALLO with different first names)."""
    records = _records(persons=40, months=1, seed=3)
    old = pl.col("record_id") <= 20
    records = records.with_columns(
        pl.when(~old).then(pl.col(c)).alias(c) for c in (f"{name}_typo", f"{name}_typo2")
    ).with_columns(pl.when(old).then(pl.lit("DIALLO")).otherwise(pl.col(other)).alias(other))
    shared = linkage.link_frame(records).filter(old)[forms]
    assert shared.null_count() == shared.len()


def _bits(model: dict, comparison: str, label: str) -> float:
    (c,) = [c for c in model["comparisons"] if c["output_column_name"] == comparison]
    (level,) = [lv for lv in c["comparison_levels"] if lv["label_for_charts"] == label]
    return math.log2(level["m_probability"] / level["u_probability"])


@pytest.mark.parametrize(("name", "other"), [("first", "last"), ("last", "first")])
def test_a_name_two_typos_apart_with_the_other_name_exact_scores_at_its_level(name, other):
    """Undated records, the other name exact: a name two typos away (two letters mistyped)
    weighs what the model says of two typos; with the other name another, the pair is not
    even a candidate (the typo rules block on the other name)."""
    names = {
        "base": "FATOUMATA",
        "one": "FATOUMAA",  # one letter left out
        "two": "FETOUMATO",  # two letters mistyped
    }
    rows = [
        {name: spelling, other: family, "sex": "F"}
        for family in ("DIALLO", "KEITA")
        for spelling in names.values()
    ]
    at = {(r[other], r[name]): i + 1 for i, r in enumerate(rows)}
    records = tokenise(
        identities([(r["last"], r["first"], None, None) for r in rows]), b"k" * 32
    ).with_columns(
        pl.Series("record_id", range(1, len(rows) + 1), dtype=pl.Int64),
        pl.lit("F").alias("sex"),
        pl.lit(None, pl.String).alias("age_band"),
    )
    model = linkage.load_model()
    w = {
        (a, b): weight
        for a, b, weight in scored_pairs(records, model, 0.0).select("a", "b", "w").rows()
    }
    base, one, two = (at[("DIALLO", n)] for n in names.values())
    comparison = f"{name}_name"
    expected = _bits(model, comparison, "two typos apart") - _bits(
        model, comparison, "one typo apart"
    )
    assert w[(base, two)] - w[(base, one)] == pytest.approx(expected, abs=1e-6)
    # the other name differs as well: no candidate pair
    assert (min(base, at[("KEITA", names["two"])]), max(base, at[("KEITA", names["two"])])) not in w


def test_pairs_beyond_the_memory_and_the_disk_fail_saying_what_to_do_not_the_sql():
    """A real out-of-memory in Splink's database (its cap lowered here, its spill forbidden), as
    Splink raises it: its own exception quoting the SQL, DuckDB's as the cause."""
    query = "SELECT count(DISTINCT i) FROM range(20000000) t(i)"
    with pytest.raises(LinkageCapacityError) as caught, _linkage_database() as conn:
        conn.execute("SET memory_limit = '20MB'")
        conn.execute("SET max_temp_directory_size = '1MB'")
        try:
            conn.execute(query).fetchall()
        except duckdb.Error as error:
            raise SplinkException(f"Error executing the following sql: {query}") from error
    said = str(caught.value)
    assert "TMPDIR" in said and "previous ids are unchanged" in said and "SELECT" not in said
    with pytest.raises(SplinkException), _linkage_database() as conn:  # any other error: as is
        try:
            conn.execute("SELECT * FROM no_such_table")
        except duckdb.Error as error:
            raise SplinkException("Error executing the following sql") from error
