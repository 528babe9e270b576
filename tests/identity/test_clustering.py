"""Clustering rules on hand-made pairs: no Splink, only the decisions."""

from __future__ import annotations

import math
from datetime import date

from synchro_dagster.identity.linkage import Components, Markers, ambiguous, one_of_several


def weight(p: float) -> float:
    """The match weight of a pair of match probability p."""
    return math.log2(p / (1 - p))


DATED_85 = Markers(dates=frozenset({"d85"}), near=frozenset({"n85"}), years=frozenset({"y85"}))
DATED_90 = Markers(dates=frozenset({"d90"}), near=frozenset({"n90"}), years=frozenset({"y90"}))
SEEN = {1: date(2025, 1, 1), 2: date(2025, 3, 1), 10: date(2025, 4, 1)}


def test_a_record_weakly_like_several_namesakes_joins_the_one_seen_last():
    comp = Components({1: DATED_85, 2: DATED_90})
    weak = [(10, 1, weight(0.5)), (10, 2, weight(0.45))]
    assert one_of_several(comp, weak, {}, [10], SEEN) == 1
    assert comp.find(10) == comp.find(2) != comp.find(1)  # person 2 was seen in March


def test_weak_pairs_that_do_not_add_up_leave_the_record_alone():
    comp = Components({1: DATED_85, 2: DATED_90})
    weak = [(10, 1, weight(0.4)), (10, 2, weight(0.35))]
    assert one_of_several(comp, weak, {}, [10], SEEN) == 0
    assert comp.find(10) == 10


def test_one_weak_pair_is_not_enough_and_a_record_already_joined_is_left_alone():
    comp = Components({1: DATED_85, 2: DATED_90})
    assert one_of_several(comp, [(10, 1, weight(0.7))], {}, [10], SEEN) == 0
    comp.union(10, 3)
    weak = [(10, 1, weight(0.5)), (10, 2, weight(0.45))]
    assert one_of_several(comp, weak, {}, [10], SEEN) == 0


def test_an_equal_fit_joins_the_candidate_seen_last_and_never_chains_the_two():
    marks = {1: DATED_85, 2: DATED_90}
    edges = [(10, 1, 12.0), (10, 2, 12.0)]
    unsure, left = ambiguous(edges, {}, marks, [10], last_seen=SEEN)
    assert unsure == {10: True} and left == [(10, 2, 12.0)]
    ties, left = ambiguous(edges, {}, marks, [10], last_seen={1: SEEN[1], 2: SEEN[1]})
    assert ties == {10: False} and len(left) == 1


def test_a_clearly_better_candidate_is_not_ambiguous():
    edges = [(10, 1, 15.0), (10, 2, 12.0)]
    unsure, left = ambiguous(edges, {}, {1: DATED_85, 2: DATED_90}, [10], last_seen=SEEN)
    assert unsure == {} and left == edges
