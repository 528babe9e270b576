"""The model learns its territory: re-estimated without labels, checked, stored, used."""

from __future__ import annotations

import json
import math
import random
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest
from stagekit import identities, stage

from synchro_dagster.identity import linkage
from synchro_dagster.identity.persons import (
    MonthIdentity,
    link_month,
    staged_records,
    write_month,
)
from synchro_dagster.identity.tokens import tokenise

JAN = date(2025, 1, 1)


def _level(model: dict, comparison: str, label: str) -> dict:
    (c,) = [c for c in model["comparisons"] if c["output_column_name"] == comparison]
    (level,) = [lv for lv in c["comparison_levels"] if lv["label_for_charts"].startswith(label)]
    return level


def test_the_shipped_model_is_sane():
    assert linkage.model_problems(linkage.load_model()) == []


def test_an_exact_name_that_counts_against_a_match_is_refused():
    model = linkage.load_model()
    exact = _level(model, "last_name", "Exact match")
    exact["m_probability"], exact["u_probability"] = 0.001, 0.01
    problems = linkage.model_problems(model)
    assert problems == ["last_name: an exact match counts against (-3.32 bits)"]


def test_a_disagreement_that_counts_for_a_match_and_a_wild_prior_are_refused():
    model = linkage.load_model()
    other = _level(model, "birth_date", "All other")
    other["m_probability"], other["u_probability"] = 0.5, 0.25
    model["probability_two_random_records_match"] = 0.6
    problems = linkage.model_problems(model)
    assert len(problems) == 2
    assert problems[0].startswith("prior 0.6")
    assert problems[1] == "birth_date: a disagreement counts for a match (1.00 bits)"


def test_a_probability_outside_zero_one_is_refused():
    model = linkage.load_model()
    _level(model, "first_name", "sounds alike")["m_probability"] = 0.0
    _level(model, "last_name", "sounds alike")["u_probability"] = 1.5
    problems = linkage.model_problems(model)
    assert "last_name: u_probability 1.5 of 'sounds alike'" in problems
    assert "first_name: m_probability 0 of 'sounds alike'" in problems


def test_too_few_records_keep_the_shipped_model():
    few = tokenise(identities([("MARTIN", "Jean", date(1980, 1, 2), "G1")] * 10), b"k" * 32)
    assert linkage.estimate(few.with_row_index("record_id")) is None


def _territory(n: int, seed: int, mistyped: int = 1, year_only: int = 0) -> list[tuple]:
    """n persons typed twice: (last, first, birth_date, sex, household_ref), the second time
    with a one-letter typo in the first name for `mistyped` persons in five; `year_only` in five
    (independently, by fives of persons) born on a 01/01, which counts as the year only."""
    rng = random.Random(seed)
    letters = "ABCDEFGHIJKLMNOPRSTUVZ"
    rows = []
    for i in range(n):
        last = "".join(rng.choice(letters) for _ in range(7))
        first = "".join(rng.choice(letters) for _ in range(6))
        born = date(1950 + rng.randrange(60), 1 + rng.randrange(12), 1 + rng.randrange(28))
        born = born.replace(month=1, day=1) if i // 5 % 5 < year_only else born
        sex = rng.choice("MF")
        rows.append((last, first, born, sex, f"H{i}"))
        typed = first[:-1] + "Q" if i % 5 < mistyped else first
        rows.append((last, typed, born, sex, f"H{i}"))
    return rows


@pytest.fixture(scope="module")
def january(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, MonthIdentity]:
    """A warehouse of 1,200 persons typed twice in January (`_territory`), linked and written
    once for the tests that start from it (a copy each), and January's result."""
    path = tmp_path_factory.mktemp("territory_model") / "january.duckdb"
    with duckdb.connect(str(path)) as conn:
        stage(conn, JAN, [(i + 2, *r) for i, r in enumerate(_territory(1200, seed=3))])
        result = link_month(conn, JAN)
        write_month(conn, result)
    return path, result


def _copy(january: tuple[Path, MonthIdentity], tmp_path: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(shutil.copy(january[0], tmp_path / "warehouse.duckdb")))


def test_link_month_estimates_on_the_territory_stores_it_and_reruns_leave_one_row(
    january, tmp_path
):
    result = january[1]
    assert result.estimate is not None and result.estimate.accepted
    assert result.model_from == JAN
    with _copy(january, tmp_path) as conn:
        write_month(conn, link_month(conn, JAN))  # the rerun
        stored = conn.execute(
            "SELECT month, records, accepted, model FROM identity.models"
        ).fetchall()
    assert [(m, n, ok) for m, n, ok, _ in stored] == [(JAN, 2400, True)]
    model = json.loads(stored[0][3])
    # one person in five has a first name one typo apart between their two records: the
    # territory says so, where the shipped model learned its own rate
    shipped = _level(linkage.load_model(), "first_name", "one typo apart")["m_probability"]
    learned = _level(model, "first_name", "one typo apart")["m_probability"]
    assert learned == pytest.approx(0.2, abs=0.03) != shipped
    # persons: 1,200, every pair joined
    links = result.links
    assert links["person_id"].n_unique() == 1200


def test_an_estimate_of_comparisons_this_release_no_longer_makes_is_made_again(january, tmp_path):
    # January's estimate was stored by a release that compared names otherwise (a level this
    # one does not have): February, without the growth that calls for an estimate, makes one
    rows = _territory(1200, seed=3)
    with _copy(january, tmp_path) as conn:
        (stored,) = conn.execute("SELECT model FROM identity.models").fetchone()
        older = json.loads(stored)
        _level(older, "first_name", "two typos apart")["sql_condition"] = "tok_first_typo2_l = 1"
        conn.execute("UPDATE identity.models SET model = ?", [json.dumps(older)])
        stage(conn, date(2025, 2, 1), [(i + 2, *r) for i, r in enumerate(rows[:200])])
        february = link_month(conn, date(2025, 2, 1))
    assert february.estimate is not None and february.estimate.accepted
    assert february.model_from == date(2025, 2, 1)
    assert february.links["person_id"].n_unique() == 100


def test_the_prior_counts_the_true_pairs_typed_apart_too():
    # one person in five mistyped, two in five dated by the year only: 48 % of the true pairs
    # are typed exactly alike, not the 70 % guessed before the m's are known; the prior is then
    # the true pairs' share (1,300 persons: enough pairs in both blocks to estimate both m's)
    rows = _territory(1300, 9, mistyped=1, year_only=2)
    with duckdb.connect() as conn:
        stage(conn, date(2025, 1, 1), [(i + 2, *r) for i, r in enumerate(rows)])
        model = link_month(conn, date(2025, 1, 1)).estimate.model
    true_prior = 1300 / math.comb(2600, 2)
    # (the guess would give 0.69 of it; the first name's m left out, 0.8; the year-only dates
    # counted twice, in the birth date's m and as undated records, 2.5; the m's: within 15 %)
    assert model["probability_two_random_records_match"] == pytest.approx(true_prior, rel=0.15)


def test_a_prior_above_one_gives_a_refused_estimate_not_a_failure():
    # 600 persons: too few pairs for expectation maximisation, the start's m's stay; exact
    # levels of m 0.01 say a millionth of the true pairs are typed alike: a prior above 1
    with duckdb.connect() as conn:
        stage(conn, date(2025, 1, 1), [(i + 2, *r) for i, r in enumerate(_territory(600, 11))])
        records = staged_records(conn, date(2025, 1, 1))
    start = linkage.load_model()
    for comparison in linkage.PRIOR_RULE_LEVELS:
        _level(start, comparison, "Exact match")["m_probability"] = 0.01
    estimate = linkage.estimate(records, start)
    assert not estimate.accepted
    assert (
        estimate.problems[0].startswith("prior ") and "outside (1e-08, 0.2)" in estimate.problems[0]
    )


def test_the_next_month_uses_the_stored_estimate_until_records_double():
    with duckdb.connect() as conn:
        rows = _territory(700, seed=4)
        stage(conn, date(2025, 1, 1), [(i + 2, *r) for i, r in enumerate(rows)])
        write_month(conn, link_month(conn, date(2025, 1, 1)))
        # February: a tenth more records, far from doubling: no new estimate, January's in use
        stage(conn, date(2025, 2, 1), [(i + 2, *r) for i, r in enumerate(rows[:140])])
        feb = link_month(conn, date(2025, 2, 1))
        assert feb.estimate is None and feb.model_from == date(2025, 1, 1)


def test_a_rejected_estimate_is_stored_but_not_used(monkeypatch):
    with duckdb.connect() as conn:
        rows = _territory(700, seed=5)
        stage(conn, date(2025, 1, 1), [(i + 2, *r) for i, r in enumerate(rows)])
        monkeypatch.setattr(
            "synchro_dagster.identity.linkage.model_problems", lambda model: ["made to fail"]
        )
        result = link_month(conn, date(2025, 1, 1))
        assert result.estimate is not None and not result.estimate.accepted
        assert result.model_from is None  # the shipped model
        write_month(conn, result)
        assert conn.execute("SELECT accepted, problems FROM identity.models").fetchall() == [
            (False, "made to fail")
        ]


def test_the_accepted_estimate_is_the_model_that_scores_the_month(monkeypatch):
    from synchro_dagster.identity import persons

    used = []

    def scoring(records, model, *args, **kwargs):
        used.append(model)
        return real(records, model, *args, **kwargs)

    real = persons.scored_pairs
    monkeypatch.setattr(persons, "scored_pairs", scoring)
    with duckdb.connect() as conn:
        stage(conn, date(2025, 1, 1), [(i + 2, *r) for i, r in enumerate(_territory(1200, 6))])
        result = link_month(conn, date(2025, 1, 1))
    assert used == [result.estimate.model]


def test_records_doubling_reestimate_and_a_refused_estimate_keeps_the_previous(monkeypatch):
    with duckdb.connect() as conn:
        rows = _territory(1200, seed=7)
        stage(conn, date(2025, 1, 1), [(i + 2, *r) for i, r in enumerate(rows)])
        write_month(conn, link_month(conn, date(2025, 1, 1)))
        stage(conn, date(2025, 2, 1), [(i + 2, *r) for i, r in enumerate(rows)])
        monkeypatch.setattr(
            "synchro_dagster.identity.linkage.model_problems", lambda model: ["made to fail"]
        )
        feb = link_month(conn, date(2025, 2, 1))  # 4,800 records: twice January's
        assert feb.estimate is not None and feb.estimate.records == 4800
        assert not feb.estimate.accepted and feb.model_from == date(2025, 1, 1)


def test_the_training_cap_does_not_reestimate_every_month(monkeypatch):
    monkeypatch.setattr("synchro_dagster.identity.persons.TRAINING_RECORDS_MAX", 1000)
    with duckdb.connect() as conn:
        rows = _territory(1200, seed=8)
        stage(conn, date(2025, 1, 1), [(i + 2, *r) for i, r in enumerate(rows)])
        jan = link_month(conn, date(2025, 1, 1))
        assert jan.estimate.records == 2400  # the history, not the 1,000 it was estimated on
        write_month(conn, jan)
        stage(conn, date(2025, 2, 1), [(i + 2, *r) for i, r in enumerate(rows[:300])])
        assert link_month(conn, date(2025, 2, 1)).estimate is None
