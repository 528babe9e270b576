"""The estimate of the unseen: exact on tables whose answer is known, and in the warehouse."""

from __future__ import annotations

import itertools
import json
from datetime import date
from pathlib import Path

import duckdb
import pytest

from synchro_dagster.indicators.estimates import estimates_month, stability
from synchro_dagster.indicators.hidden import (
    DISAGREEMENT_FACTOR,
    UNSEEN_FLOOR,
    estimate_month,
    estimate_table,
    total,
)


def expected_histories(n: int, p: dict[str, float]) -> list[frozenset[str]]:
    """The histories n households would show on average if each list saw them independently."""
    out: list[frozenset[str]] = []
    for bits in itertools.product((0, 1), repeat=len(p)):
        if any(bits):
            share = 1.0
            for bit, q in zip(bits, p.values(), strict=True):
                share *= q if bit else 1 - q
            out += [frozenset(x for bit, x in zip(bits, p, strict=True) if bit)] * round(n * share)
    return out


def test_two_lists_give_lincoln_petersen():
    # 100 on list a, 80 on list b, 40 on both: N = 100 * 80 / 40 = 200, 60 seen by neither
    seen = [frozenset("a")] * 60 + [frozenset("b")] * 40 + [frozenset("ab")] * 40
    est = estimate_table("x", seen, ["a", "b"])
    assert est.unseen == pytest.approx(60.0, rel=1e-6)
    assert [m.name for m in est.models] == ["independence"]
    assert est.lower < 60 < est.upper and est.lower > 30 and est.upper < 120
    assert est.warnings == []


def test_independent_lists_recover_the_unseen_and_cover_it():
    p = {"a": 0.5, "b": 0.4, "c": 0.3}
    seen = expected_histories(10_000, p)
    est = estimate_table("x", seen, list(p))
    assert est.unseen == pytest.approx(10_000 * 0.5 * 0.6 * 0.7, rel=1e-3)
    assert est.models[0].name == "independence" and est.models[0].weight > 0.9
    assert sum(m.weight for m in est.models) == pytest.approx(1.0)
    assert est.lower < est.unseen < est.upper


def test_dependent_lists_are_modelled_not_ignored():
    # b sees mostly whom a sees: 'a*b' is needed; c is independent of both
    cells = {"a": 300, "b": 20, "ab": 400, "c": 100, "ac": 100, "bc": 10, "abc": 130}
    seen = [frozenset(k) for k, n in cells.items() for _ in range(n)]
    est = estimate_table("x", seen, ["a", "b", "c"])
    assert est.models[0].name == "a*b"
    independence = next(
        (m for m in est.models if m.name == "independence"), None
    )  # too unlikely to be kept, or kept with a small weight
    assert independence is None or independence.weight < 0.05


def test_one_list_gives_no_estimate_and_the_check_warns():
    strata = estimate_month([("RUE", ["maraudes"])] * 60)
    assert [s.unseen for s in strata] == [None]
    outcome = stability(strata)
    assert not outcome.passed and outcome.severity == "WARN"
    assert "one_list" in outcome.metadata["problems"]


def test_small_lists_and_strata_are_grouped_and_warned():
    sheltered = (
        [("HOTEL", ["hebergement", "siao_urgence"])] * 40
        + [("HOTEL", ["hebergement"])] * 40
        + [("HOTEL", ["siao_urgence"])] * 20
        + [("HOTEL", ["dalo"])] * 3
    )
    street = [("RUE", ["maraudes"])] * 5 + [("RUE", ["maraudes", "siao_urgence"])] * 5
    strata = estimate_month(sheltered + street)
    assert [s.stratum for s in strata] == ["abri+rue"]  # 10 street households: not alone
    (s,) = strata
    # dalo's 3 and maraudes' 10 households join the smallest list: no list left too small
    assert s.lists == ["hebergeurs", "siao_urgence"] and s.seen == 113
    assert not any(w.startswith("list_too_small") for w in s.warnings)
    # a stratum whose lists are all small: one list left, no estimate, and the check says so
    (few,) = estimate_month([("RUE", ["maraudes"])] * 10 + [("RUE", ["accueils_jour"])] * 10)
    assert few.lists == ["autres"] and few.unseen is None
    assert {"one_list", "stratum_too_small"} <= set(few.warnings)


def test_models_that_disagree_are_flagged():
    # a two-way interaction changes the answer several-fold: the check says so
    cells = {"a": 50, "b": 50, "ab": 5, "c": 50, "ac": 5, "bc": 40, "abc": 2}
    seen = [frozenset(k) for k, n in cells.items() for _ in range(n)]
    est = estimate_table("x", seen, ["a", "b", "c"])
    heavy = [m.unseen for m in est.models if m.weight >= 0.05]
    assert ("models_disagree" in est.warnings) == (
        max(heavy) > DISAGREEMENT_FACTOR * max(min(heavy), 1.0)
    )


def test_a_model_putting_no_one_out_of_sight_gives_an_estimate_not_a_crash():
    # a sees all but one household, the one b and c both saw: models linking a with b (or with
    # c) have no household to go on outside those two lists, and put the unseen at zero. Month 4
    # of a 300-household territory did this to the sheltered (brentq: no sign change)
    cells = {"a": 20, "ab": 2, "ac": 40, "bc": 1, "abc": 10}
    seen = [frozenset(k) for k, n in cells.items() for _ in range(n)]
    est = estimate_table("abri", seen, ["a", "b", "c"])
    at_zero = [m for m in est.models if m.unseen == UNSEEN_FLOOR]
    assert {m.name for m in at_zero} >= {"a*b", "a*c"} and sum(m.weight for m in at_zero) > 0.05
    assert all(m.lower <= m.unseen <= m.upper for m in est.models)
    assert 0 < est.lower <= est.unseen <= est.upper < 5  # 73 seen, 72 of them by a
    assert "model_at_zero" in est.warnings
    outcome = stability([est])
    assert not outcome.passed and "abri: model_at_zero" in outcome.metadata["problems"]
    assert total([est]) == pytest.approx((est.unseen, est.lower, est.upper))


def test_ordinary_tables_keep_their_estimates():
    # unseen, lower, upper as the code before model_at_zero gave them (b1e68f9)
    for cells, before in (
        (
            {"a": 300, "b": 20, "ab": 400, "c": 100, "ac": 100, "bc": 10, "abc": 130},
            (295.1392106026477, 199.8596346698498, 384.1317788968603),
        ),
        (
            {"a": 50, "b": 50, "ab": 5, "c": 50, "ac": 5, "bc": 40, "abc": 2},
            (553.8067662080317, 70.90906878635055, 1198.8850887449187),
        ),
    ):
        seen = [frozenset(k) for k, n in cells.items() for _ in range(n)]
        est = estimate_table("x", seen, ["a", "b", "c"])
        assert (est.unseen, est.lower, est.upper) == pytest.approx(before, rel=1e-9)
        assert "model_at_zero" not in est.warnings


# ------------------------------------------------------------------ in the warehouse
def test_every_month_has_its_estimate_and_ranges(ran: Path):
    with duckdb.connect(str(ran / "warehouse" / "synchro.duckdb"), read_only=True) as conn:
        months = [
            m for (m,) in conn.execute("SELECT DISTINCT month FROM marts.indicators").fetchall()
        ]
        hidden = conn.sql("SELECT * FROM marts.hidden_population").pl()
        est = conn.sql("SELECT * FROM marts.estimates").pl()
        seen = dict(
            conn.execute(
                "SELECT month, count(*) FROM core.household_months WHERE status = 'active' "
                "AND len(sources) > 0 GROUP BY 1"
            ).fetchall()
        )
        counts = {
            (m, i): v
            for m, i, v in conn.execute(
                "SELECT month, indicator, value FROM marts.indicators WHERE dimension IS NULL"
            ).fetchall()
        }
    assert sorted(set(hidden["month"])) == sorted(months) == sorted(set(est["month"]))
    for month in months:
        rows = hidden.filter(hidden["month"] == month)
        assert rows["households_seen"].sum() == seen[month]
        for r in rows.iter_rows(named=True):
            if r["estimated_unseen"] is not None:
                assert 0 <= r["unseen_lower"] <= r["estimated_unseen"] <= r["unseen_upper"]
                weights = [m["weight"] for m in json.loads(r["models"])]
                assert sum(weights) == pytest.approx(1.0, abs=1e-3)
        month_est = {
            r["indicator"]: r for r in est.filter(est["month"] == month).iter_rows(named=True)
        }
        for name in ("stock_households", "inflow_households", "outflow_households"):
            r = month_est[name]
            assert r["kind"] == "linkage_range" and r["value"] == counts[(month, name)]
            assert r["lower"] <= r["value"] <= r["upper"]
        if "estimated_households_total" in month_est:
            t = month_est["estimated_households_total"]
            assert t["kind"] == "estimation" and t["value"] >= seen[month]
            assert t["lower"] <= t["value"] <= t["upper"]
            u = month_est["estimated_households_unseen"]
            assert t["value"] == pytest.approx(seen[month] + u["value"])


def test_linkage_range_widens_with_identity_doubts(ran: Path, tmp_path: Path):
    from pipelinekit import copy

    data = copy(ran, tmp_path)
    month = date(2025, 3, 1)
    with duckdb.connect(str(data / "warehouse" / "synchro.duckdb")) as conn:
        estimates_month(conn, month)
        before = dict(
            conn.execute(
                "SELECT indicator, upper - lower FROM marts.estimates WHERE month = ?", [month]
            ).fetchall()
        )
        conn.execute(
            "UPDATE identity.churn SET n = n + 5 WHERE month = ? AND entity = 'record' "
            "AND kind = 'ambiguous'",
            [month],
        )
        estimates_month(conn, month)
        after = dict(
            conn.execute(
                "SELECT indicator, upper - lower FROM marts.estimates WHERE month = ?", [month]
            ).fetchall()
        )
    assert after["inflow_households"] - before["inflow_households"] == pytest.approx(10)
    assert after["stock_households"] - before["stock_households"] == pytest.approx(10)


def test_estimates_are_published_apart_rounded_and_not_as_counts(ran: Path):
    import polars as pl

    from synchro_dagster.publish.report_xlsx import ESTIMATE_TITLE

    public = ran / "published" / "public"
    counts = pl.read_parquet(public / "indicators.parquet")
    est = pl.read_parquet(public / "estimations.parquet")
    assert not counts.filter(pl.col("indicateur").str.starts_with("estimated_")).height
    estimates = est.filter(pl.col("nature") == "estimation")
    assert set(estimates["indicateur"]) == {
        "estimated_households_total",
        "estimated_households_unseen",
    }
    for r in estimates.iter_rows(named=True):  # to the ten: read as "about"
        assert r["valeur"] % 10 == r["borne_basse"] % 10 == r["borne_haute"] % 10 == 0
        assert r["borne_basse"] <= r["valeur"] <= r["borne_haute"]
    published = {
        (r["mois"], r["indicateur"]): r["valeur"]
        for r in counts.filter(
            (pl.col("statut") == "publie") & pl.col("dimension").is_null()
        ).iter_rows(named=True)
    }
    ranges = est.filter(pl.col("nature") == "fourchette_appariement")
    assert ranges.height
    for r in ranges.iter_rows(named=True):  # only next to a published count, which it holds
        assert r["borne_basse"] <= published[(r["mois"], r["indicateur"])] == r["valeur"]
        assert r["valeur"] <= r["borne_haute"]
    html = (ran / "published" / "reports" / "synchro_2025-03.html").read_text(encoding="utf-8")
    total = estimates.filter(
        (pl.col("mois") == "2025-03") & (pl.col("indicateur") == "estimated_households_total")
    ).row(0, named=True)
    assert ESTIMATE_TITLE.replace("'", "&#x27;") in html
    assert f"environ {total['valeur']} ménages" in html and "pas un comptage" in html


def test_lists_that_do_not_overlap_give_no_estimate_or_a_capped_one():
    # nobody on both lists: Lincoln-Petersen is infinite, no model is kept
    apart = [frozenset("a")] * 50 + [frozenset("b")] * 40
    est = estimate_table("x", apart, ["a", "b"])
    assert est.unseen is None and est.warnings == ["no_model"]
    # three small lists barely overlapping: the upper end reaches ten times the seen
    cells = {"a": 40, "b": 30, "c": 20, "ab": 3, "ac": 2, "bc": 0, "abc": 0}
    seen = [frozenset(k) for k, n in cells.items() for _ in range(n)]
    est = estimate_table("x", seen, ["a", "b", "c"])
    assert "capped" in est.warnings and est.upper == pytest.approx(10 * len(seen), rel=1e-3)
