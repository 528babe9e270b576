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


def known(node: int) -> bool:
    """Nodes 1 to 9 are persons of earlier months."""
    return node < 10


# two weak pairs that together say "one of them": odds 7/3 + 13/7 = 4.19, P = 4.19 / 5.19 = 0.81
LIKELY_TOGETHER = [(10, 1, weight(0.7)), (10, 2, weight(0.65))]


def test_a_record_weakly_like_several_namesakes_joins_the_one_seen_last():
    comp = Components({1: DATED_85, 2: DATED_90})
    assert one_of_several(comp, LIKELY_TOGETHER, {}, [10], SEEN, known=known) == 1
    assert comp.find(10) == comp.find(2) != comp.find(1)  # person 2 was seen in March


def test_weak_pairs_that_do_not_add_up_leave_the_record_alone():
    comp = Components({1: DATED_85, 2: DATED_90})
    weak = [(10, 1, weight(0.4)), (10, 2, weight(0.35))]
    assert one_of_several(comp, weak, {}, [10], SEEN, known=known) == 0
    assert comp.find(10) == 10


def test_weak_pairs_combine_as_odds_not_as_a_sum_of_probabilities():
    """0.5 and 0.45 sum to 0.95, above the 0.8 threshold, but "one of the two" is only as
    likely as odds 1 + 9/11 against "neither" say: 0.65."""
    comp = Components({1: DATED_85, 2: DATED_90})
    weak = [(10, 1, weight(0.5)), (10, 2, weight(0.45))]
    assert one_of_several(comp, weak, {}, [10], SEEN, known=known) == 0
    assert comp.find(10) == 10


def test_records_of_the_month_left_alone_are_no_candidates():
    """The snowball: an undated record of a common name is weakly like every lone record of
    that name this month; those are no persons yet, and together they must not push it into
    one of them (nor a second undated record into the same one)."""
    comp = Components({1: DATED_85, 2: DATED_90})
    assert one_of_several(comp, LIKELY_TOGETHER, {}, [10], SEEN) == 0
    assert comp.find(10) == 10
    # a person of several records of the month is one (the all-at-once path has no earlier
    # months): it counts, the other lone record does not, and one pair of 0.7 is not enough
    comp.union(2, 3)
    assert one_of_several(comp, LIKELY_TOGETHER, {}, [10], SEEN) == 0
    comp.union(1, 4)
    assert one_of_several(comp, LIKELY_TOGETHER, {}, [10], SEEN) == 1


def test_one_weak_pair_is_not_enough_and_a_record_already_joined_is_left_alone():
    comp = Components({1: DATED_85, 2: DATED_90})
    assert one_of_several(comp, [(10, 1, weight(0.7))], {}, [10], SEEN, known=known) == 0
    comp.union(10, 3)
    assert one_of_several(comp, LIKELY_TOGETHER, {}, [10], SEEN, known=known) == 0


def test_an_equal_fit_joins_the_candidate_seen_last_and_never_chains_the_two():
    marks = {1: DATED_85, 2: DATED_90}
    edges = [(10, 1, 12.0), (10, 2, 12.0)]
    unsure, left, choices = ambiguous(edges, {}, marks, [10], last_seen=SEEN)
    assert unsure == {10: True} and left == [] and choices == {10: [2, 1]}
    ties, left, choices = ambiguous(edges, {}, marks, [10], last_seen={1: SEEN[1], 2: SEEN[1]})
    assert ties == {10: False} and choices == {10: [1, 2]}  # a tie: the oldest id
    comp = Components(marks)
    comp.join_first(choices, {})
    assert comp.find(10) == comp.find(1) != comp.find(2)


def test_an_equal_fit_the_month_shows_to_be_another_person_joins_the_next_candidate():
    """Undated record 10 fits namesakes 1 (seen last) and 2 equally; record 11 of the month,
    listed in the same household as 10 by a source that lists each person once, is 1 (heavier,
    dated): 10 cannot be 1 too, so it is 2, not a person of its own."""
    listed = Markers(listings=frozenset({"h|2025-04"}))
    marks = {1: DATED_85, 2: DATED_90, 10: listed, 11: listed | DATED_85}
    edges = [(11, 1, 20.0), (10, 1, 12.0), (10, 2, 12.0)]
    seen = {1: SEEN[2], 2: SEEN[1]}
    unsure, left, choices = ambiguous(edges, {}, marks, [10, 11], last_seen=seen)
    assert unsure == {10: True} and left == [(11, 1, 20.0)] and choices == {10: [1, 2]}
    comp = Components(marks)
    for a, b, _ in left:
        comp.union(a, b)
    comp.join_first(choices, {})
    assert comp.find(11) == comp.find(1) != comp.find(10) == comp.find(2)


def test_a_known_person_fitting_equally_comes_before_a_record_of_the_month():
    """Record 10 fits the two dated namesakes and record 11 (undated, of the month too) equally:
    11 is "seen" this month by construction; the known namesake seen last is the likelier."""
    marks = {1: DATED_85, 2: DATED_90}
    edges = [(10, 1, 12.0), (10, 2, 12.0), (10, 11, 12.0)]
    seen = {**SEEN, 11: SEEN[10]}
    unsure, left, choices = ambiguous(edges, {}, marks, [10, 11], last_seen=seen)
    assert unsure == {10: True} and left == [] and choices[10][0] == 2
    # between records of the month only (the all-at-once path), the one seen last still wins
    unsure, left, choices = ambiguous(edges, {}, marks, [1, 2, 10, 11], last_seen=seen)
    assert left == [] and choices[10][0] == 11


def test_household_context_settles_an_equal_fit_whatever_was_seen_last():
    marks = {1: DATED_85, 2: DATED_90}
    edges = [(10, 1, 12.0), (10, 2, 12.0)]
    unsure, left, choices = ambiguous(edges, {}, marks, [10], lambda r, c: {1}, SEEN)
    assert unsure == {} and left == [(10, 1, 12.0)] and choices == {}


def test_two_candidates_that_may_be_one_person_are_not_ambiguous():
    edges = [(10, 1, 12.0), (10, 2, 12.0)]
    unsure, left, choices = ambiguous(edges, {}, {1: DATED_85, 2: DATED_85}, [10], last_seen=SEEN)
    assert unsure == {} and left == edges and choices == {}


def test_two_weak_pairs_to_one_person_count_once():
    comp = Components({1: DATED_85, 2: DATED_90})
    comp.union(1, 3)
    weak = [(10, 1, weight(0.7)), (10, 3, weight(0.65))]
    assert one_of_several(comp, weak, {}, [10], SEEN, known=known) == 0


def test_a_record_joined_earlier_in_the_pass_is_not_alone_any_more():
    comp = Components({1: DATED_85, 2: DATED_90})
    # 10 joins 2 (seen last); then 11's two weak pairs, to 10 and to 2, point to one person:
    # counted once they do not add up
    weak = [*LIKELY_TOGETHER, (11, 10, weight(0.7)), (11, 2, weight(0.65))]
    assert one_of_several(comp, weak, {}, [10, 11], SEEN, known=known) == 1
    assert comp.find(10) == comp.find(2) != comp.find(11)


def test_a_candidate_whose_dates_say_another_person_is_not_counted():
    record = Markers(dates=frozenset({"d90"}), near=frozenset({"n90"}), years=frozenset({"y90"}))
    comp = Components({1: DATED_85, 2: DATED_85, 10: record})
    assert one_of_several(comp, LIKELY_TOGETHER, {}, [10], SEEN, known=known) == 0


def test_a_clearly_better_candidate_is_not_ambiguous():
    edges = [(10, 1, 15.0), (10, 2, 12.0)]
    unsure, left, choices = ambiguous(edges, {}, {1: DATED_85, 2: DATED_90}, [10], last_seen=SEEN)
    assert unsure == {} and left == edges and choices == {}


def test_birth_dates_agree_as_a_typing_accident_does_in_markers_and_in_pairs():
    """Markers (clusters) and scored_pairs' dates_agree (pairs) judge dates alike: same date,
    swapped, or one field apart; two full dates of one year but another day and month are two
    persons."""
    import polars as pl
    from stagekit import KEY, identities

    from synchro_dagster.identity.linkage import markers, scored_pairs
    from synchro_dagster.identity.tokens import tokenise

    born = [date(1985, 3, 2), date(1985, 3, 21), date(1985, 2, 3), date(1985, 7, 19)]
    records = tokenise(
        identities([("DIALLO", "Mamadou", b, f"G{i}") for i, b in enumerate(born)]), KEY
    ).with_row_index("record_id", offset=1)
    records = records.with_columns(
        pl.col("record_id").cast(pl.Int64), sex=pl.lit("M"), age_band=pl.lit(None, pl.String)
    )
    marks = markers(records)
    assert [marks[1].compatible(marks[i]) for i in (2, 3, 4)] == [True, True, False]
    pairs = scored_pairs(records, threshold=1e-9).filter(pl.col("a") == 1).sort("b")
    assert pairs["dates_agree"].to_list() == [True, True, False]
