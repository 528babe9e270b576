"""Revised indicators: past months computed again with identity as known later, as a vintage
beside their first computation."""

from __future__ import annotations

from datetime import date

from synchro_dagster.indicators.revision import revise
from synchro_dagster.observation.build import Window

JAN, FEB, MAR, APR = (date(2025, m, 1) for m in range(1, 5))


def _in_pieces(wh) -> None:
    """Households 1 and 3 on the street from January; in February person 2 appears at the 115
    as a household of his own (2); in March the partner lists him with person 1: linkage finds
    household 2 is household 1."""
    wh.record("maraudes", 1, 1, "2025-01-10", "RUE")
    wh.record("maraudes", 3, 3, "2025-01-11", "RUE")
    wh.record("maraudes", 1, 1, "2025-02-10", "RUE")
    wh.record("maraudes", 3, 3, "2025-02-11", "RUE")
    wh.record("siao_urgence", 2, 2, "2025-02-12", "RUE")
    wh.alias_household(MAR, 2, 1)
    wh.record("maraudes", 1, 1, "2025-03-10", "RUE")
    wh.record("siao_urgence", 2, 1, "2025-03-12", "RUE")
    wh.record("maraudes", 3, 3, "2025-03-11", "RUE")
    wh.observe(JAN, FEB, MAR)


def _revised(wh, vintage: date) -> dict[tuple[date, str, str | None], float]:
    return {
        (m, i, d): v
        for m, i, d, v in wh.conn.execute(
            "SELECT month, indicator, dimension, value FROM marts.revised_indicators "
            "WHERE vintage = ?",
            [vintage],
        ).fetchall()
    }


def _first(wh, *months: date) -> dict[tuple[date, str, str | None], float]:
    return {
        (m, i, d): v
        for m, i, d, v in wh.conn.execute(
            "SELECT month, indicator, dimension, value FROM marts.indicators "
            "WHERE list_contains(?, month)",
            [list(months)],
        ).fetchall()
    }


def test_a_household_found_later_to_be_one_is_neither_an_inflow_nor_a_merge_once_revised(
    warehouse,
):
    wh = warehouse
    _in_pieces(wh)
    first = _first(wh, FEB, MAR)
    assert first[FEB, "inflow_households", "type=newly_identified"] == 1
    assert first[MAR, "outflow_households", "type=duplicate_merged"] == 1

    revised, broken = revise(wh.conn, Window(MAR), 1)
    assert (revised, broken) == ([FEB, MAR], [])
    figures = _revised(wh, MAR)
    assert {m for m, _, _ in figures} == {FEB, MAR}  # January is only the starting stock
    assert figures[FEB, "stock_households", None] == 2
    assert figures[FEB, "inflow_households", None] == 0
    assert figures[MAR, "outflow_households", None] == 0
    assert figures[MAR, "stock_households", None] == first[MAR, "stock_households", None] == 2
    assert _first(wh, FEB, MAR) == first  # the first computation stays as published


def test_a_revision_that_learned_nothing_repeats_the_first_computation(warehouse):
    wh = warehouse
    _in_pieces(wh)
    revised, _ = revise(wh.conn, Window(FEB), 1)  # identity as known in February: no merge yet
    assert revised == [JAN, FEB]
    assert _revised(wh, FEB) == _first(wh, JAN, FEB)


def test_a_vintage_is_replaced_by_its_rerun_and_leaves_the_others(warehouse):
    wh = warehouse
    _in_pieces(wh)
    revise(wh.conn, Window(FEB), 1)
    revise(wh.conn, Window(MAR), 1)
    february = _revised(wh, FEB)
    march = _revised(wh, MAR)
    revise(wh.conn, Window(MAR), 1)
    assert _revised(wh, FEB) == february and _revised(wh, MAR) == march
    (vintages,) = wh.conn.execute(
        "SELECT count(DISTINCT vintage) FROM marts.revised_indicators"
    ).fetchall()[0]
    assert vintages == 2
