"""Primary and secondary suppression on small hand-made tables."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from synchro_dagster.publish import disclosure
from synchro_dagster.publish.disclosure import PRIMARY, PUBLISHED, SECONDARY

JAN, FEB = date(2025, 1, 1), date(2025, 2, 1)


def table(rows: list[tuple[date, str, str | None, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={"month": pl.Date, "indicator": pl.String, "dimension": pl.String, "value": float},
        orient="row",
    )


def statuses(cells: pl.DataFrame, min_cell: int = 11) -> dict[tuple, str]:
    found = disclosure.protect(cells, min_cell, lookback_months=24)
    keys = cells.select("month", "indicator", "dimension").iter_rows()
    return {(m.month, i, d): s for (m, i, d), s in zip(keys, found, strict=True)}


def test_small_non_zero_cells_are_primary_zeros_are_published():
    cells = table(
        [
            (JAN, "answers_received", "answer=shelter", 10),
            (JAN, "answers_received", "answer=housing_allocation", 11),
            (JAN, "answers_received", "answer=adapted_housing", 0),
            (JAN, "answers_received", "answer=insertion_accommodation", 1),
        ]
    )
    assert disclosure.primary(cells, 11).tolist() == [True, False, False, True]
    assert disclosure.primary(cells, 10).tolist() == [False, False, False, True]


def test_persons_and_requests_follow_the_households_behind_them():
    cells = table(
        [
            (JAN, "stock_households", "composition=couple_avec_enfants", 4),
            (JAN, "stock_persons", "composition=couple_avec_enfants", 17),  # 4 households
            (JAN, "stock_households", "composition=homme_seul", 30),
            (JAN, "stock_persons", "composition=homme_seul", 30),
            (JAN, "households_urgence_not_fulfilled", None, 3),
            (JAN, "urgence_requests_not_fulfilled", None, 12),  # 3 households
        ]
    )
    assert disclosure.primary(cells, 11).tolist() == [True, True, False, False, True, True]


def test_durations_on_few_households_are_primary():
    cells = table(
        [
            (JAN, "outflow_households", "type=to_housing:social", 6),
            (JAN, "outflow_households", "type=to_housing:private", 6),
            (JAN, "mean_months_to_housing", None, 4.5),  # on 12 households: published
            (JAN, "priority_not_housed", None, 9),
            (JAN, "median_months_waiting_priority", None, 3),  # on 9
        ]
    )
    assert disclosure.primary(cells, 11).tolist() == [True, True, False, True, True]


def test_a_lone_suppressed_part_gets_the_smallest_non_zero_complement():
    cells = table(
        [
            (JAN, "outflow_households", None, 60),
            (JAN, "outflow_households", "type=deceased", 2),
            (JAN, "outflow_households", "type=left_territory", 0),  # zero: adds no protection
            (JAN, "outflow_households", "type=to_inactivity", 40),
            (JAN, "outflow_households", "type=duplicate_merged", 18),
        ]
    )
    got = statuses(cells)
    assert got[(1, "outflow_households", "type=deceased")] == PRIMARY
    assert got[(1, "outflow_households", "type=duplicate_merged")] == SECONDARY
    assert got[(1, "outflow_households", "type=left_territory")] == PUBLISHED
    assert got[(1, "outflow_households", "type=to_inactivity")] == PUBLISHED
    assert got[(1, "outflow_households", None)] == PUBLISHED


def test_the_stock_balance_ties_months_together():
    """Outflow 5 in February is pinned by stock(Feb) - stock(Jan) - inflow(Feb) unless one of
    them is hidden; inflow has one part, so it goes with it."""
    cells = table(
        [
            (JAN, "stock_households", None, 100),
            (JAN, "inflow_households", None, 100),
            (JAN, "inflow_households", "type=newly_identified", 100),
            (JAN, "outflow_households", None, 0),
            (FEB, "stock_households", None, 135),
            (FEB, "inflow_households", None, 40),
            (FEB, "inflow_households", "type=newly_identified", 40),
            (FEB, "outflow_households", None, 5),
            (FEB, "outflow_households", "type=to_inactivity", 5),
        ]
    )
    got = statuses(cells)
    assert got[(2, "outflow_households", None)] == PRIMARY
    assert got[(2, "inflow_households", None)] == SECONDARY
    assert got[(2, "inflow_households", "type=newly_identified")] == SECONDARY
    assert got[(2, "stock_households", None)] == PUBLISHED
    assert got[(1, "stock_households", None)] == PUBLISHED


def test_audit_finds_a_cell_pinned_by_the_ethos_categories():
    cells = table(
        [
            (JAN, "stock_households", None, 50),
            (JAN, "stock_households", "situation=INSTITUTION", 4),
            (JAN, "stock_households", "situation=RUE", 46),
            (JAN, "stock_households", "ethos=4", 4),
            (JAN, "stock_households", "ethos=1", 46),
        ]
    )
    rels = disclosure.relations(cells, 24)
    values = cells["value"].to_numpy().astype(float)
    hidden = np.array([False, True, True, True, False])  # ethos=1 still tells RUE
    intervals = disclosure.audit(values, hidden, rels)
    assert intervals[1].low == pytest.approx(4) and intervals[1].high == pytest.approx(4)
    got = statuses(cells)
    assert got[(1, "stock_households", "ethos=1")] == SECONDARY
    assert got[(1, "stock_households", "situation=RUE")] == SECONDARY


def test_a_relation_the_data_breaks_is_left_out():
    cells = table(
        [
            (JAN, "returns_from_housing", "within=6", 3),
            (JAN, "returns_from_housing", "within=12", 2),  # 6 <= 12 does not hold here
        ]
    )
    names = [r.name for r in disclosure.relations(cells, 24)]
    assert "2025-01 returns within 6 <= 12 months" not in names
