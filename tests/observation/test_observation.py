"""Observation and indicators on a hand-built warehouse: a few records, the exact outcome.

Dates are in 2025; occupancy lists (hebergement, logement_accompagne) are dated at the end of
the month, and an exit row is dated by its exit date, as ingestion stages them.
"""

from __future__ import annotations

from datetime import date

import pytest

from synchro_dagster.identity.aliases import AliasResolver
from synchro_dagster.indicators.build import balance_holds, parts_mismatches, stock_balance
from synchro_dagster.observation.build import Window, observe_month
from synchro_dagster.observation.checks import (
    duplicate_household_months,
    untraced_household_months,
)

JAN, FEB, MAR, APR, MAY, JUN = (date(2025, m, 1) for m in range(1, 7))
CORE = ("core.household_months", "core.household_events", "core.provenance", "marts.indicators")


def housing_exit(wh, source, person, household, on, destination, **cells):
    """A provider's row saying the household left on `on` for `destination`."""
    wh.record(
        source,
        person,
        household,
        on,
        cells.pop("situation", "MISE_ABRI"),
        exit_date=on,
        exit_destination=destination,
        **cells,
    )


# ---------------------------------------------------------------- a household's path


def test_street_then_shelter_then_social_housing(warehouse):
    wh = warehouse
    wh.record("maraudes", 1, 1, "2025-01-12", "RUE")
    wh.record("hebergement", 1, 1, "2025-02-28", "MISE_ABRI", programme="CHU")
    housing_exit(wh, "hebergement", 1, 1, "2025-03-10", "housing_social", programme="CHU")
    wh.observe(JAN, FEB, MAR)

    assert wh.events(JAN) == {(1, "inflow", "newly_identified", None, None)}
    assert [wh.row(m, 1)["situation"] for m in (JAN, FEB)] == ["RUE", "MISE_ABRI"]
    assert [wh.row(m, 1)["status"] for m in (JAN, FEB)] == ["active", "active"]
    assert wh.events(FEB) == set()
    march = wh.row(MAR, 1)
    assert (march["status"], march["situation"], march["housing_kind"]) == (
        "housed",
        "LOGE",
        "social",
    )
    assert march["exit_date"] == date(2025, 3, 10)
    assert wh.events(MAR) == {(1, "outflow", "to_housing", "social", None)}
    assert wh.stock(JAN, FEB, MAR) == [1, 1, 0]
    assert wh.value(MAR, "outflow_households", "type=to_housing:social") == 1


def test_ninety_days_without_a_record_is_an_outflow_to_inactivity_and_a_return_an_inflow(
    warehouse,
):
    wh = warehouse
    wh.record("accueils_jour", 1, 1, "2025-01-15", "RUE")
    wh.record("accueils_jour", 1, 1, "2025-06-10", "RUE")
    wh.observe(JAN, FEB, MAR, APR, MAY, JUN)

    # end of March - 90 days = Dec 31: Jan 15 is in; end of April - 90 days = Jan 30: out
    assert [wh.row(m, 1)["status"] for m in (JAN, FEB, MAR)] == ["active"] * 3
    assert wh.row(APR, 1) is None
    assert wh.events(APR) == {(1, "outflow", "to_inactivity", None, None)}
    assert wh.events(MAY) == set()
    assert wh.events(JUN) == {(1, "inflow", "returned_from_inactivity", None, None)}
    assert wh.stock(JAN, FEB, MAR, APR, MAY, JUN) == [1, 1, 1, 0, 0, 1]


def test_the_inactivity_window_is_a_parameter(warehouse):
    wh = warehouse
    wh.record("accueils_jour", 1, 1, "2025-01-15", "RUE")
    wh.observe(JAN, FEB, inactivity_days=20)  # end of February - 20 days = Feb 8
    assert wh.stock(JAN, FEB) == [1, 0]
    assert wh.events(FEB) == {(1, "outflow", "to_inactivity", None, None)}


def test_seen_on_the_street_after_a_housing_exit_is_a_return_from_housing(warehouse):
    wh = warehouse
    wh.record("maraudes", 1, 1, "2025-01-08", "RUE")
    housing_exit(wh, "siao_insertion", 1, 1, "2025-02-12", "housing_private")
    wh.record("maraudes", 1, 1, "2025-04-03", "RUE")
    wh.observe(JAN, FEB, MAR, APR)

    assert wh.events(FEB) == {(1, "outflow", "to_housing", "private", None)}
    assert wh.row(MAR, 1)["status"] == "housed"  # the exit is still in the window
    assert wh.events(MAR) == set()
    assert wh.row(APR, 1)["status"] == "active"
    assert wh.events(APR) == {(1, "inflow", "returned_from_housing", None, None)}
    assert wh.stock(JAN, FEB, MAR, APR) == [1, 0, 0, 1]
    # a return two months after the exit counts within 6, 12 and 24 months
    assert wh.table("core.household_events")[-1][-1] == 2  # months_since_exit
    assert [wh.value(APR, "returns_from_housing", f"within={n}") for n in (6, 12, 24)] == [1] * 3
    assert wh.value(MAR, "returns_from_housing", "within=6") == 0


def test_street_evidence_in_the_month_of_a_housing_exit_does_not_reactivate(warehouse):
    wh = warehouse
    wh.record("maraudes", 1, 1, "2025-01-20", "RUE")
    housing_exit(wh, "hebergement", 1, 1, "2025-02-10", "housing_social")
    wh.record("maraudes", 1, 1, "2025-02-20", "RUE")  # a list that lags: same month
    wh.observe(JAN, FEB)
    assert wh.row(FEB, 1)["status"] == "housed"
    assert wh.events(FEB) == {(1, "outflow", "to_housing", "social", None)}


def test_street_evidence_in_the_month_after_a_housing_exit_reactivates(warehouse):
    wh = warehouse
    wh.record("maraudes", 1, 1, "2025-01-20", "RUE")
    housing_exit(wh, "hebergement", 1, 1, "2025-02-10", "housing_social")
    wh.record("maraudes", 1, 1, "2025-03-02", "RUE")
    wh.observe(JAN, FEB, MAR)
    assert wh.row(MAR, 1)["status"] == "active"
    assert wh.row(MAR, 1)["situation"] == "RUE"
    assert wh.events(MAR) == {(1, "inflow", "returned_from_housing", None, None)}


@pytest.mark.parametrize("destination", ["deceased", "left_territory"])
def test_a_death_or_departure_reported_by_a_source_is_an_outflow_of_that_type(
    warehouse, destination
):
    wh = warehouse
    wh.record("hebergement", 1, 1, "2025-01-31", "MISE_ABRI")
    housing_exit(wh, "hebergement", 1, 1, "2025-02-14", destination)
    wh.observe(JAN, FEB)
    row = wh.row(FEB, 1)
    assert (row["status"], row["situation"], row["exit_date"]) == (
        destination,
        "INCONNU",
        date(2025, 2, 14),
    )
    assert wh.events(FEB) == {(1, "outflow", destination, None, None)}
    assert wh.value(FEB, "outflow_households", f"type={destination}") == 1
    assert wh.stock(JAN, FEB) == [1, 0]


# ---------------------------------------------------------------- situation of the month


def test_same_day_evidence_goes_to_the_better_ranked_source(warehouse):
    wh = warehouse
    # accueils_jour (rank 6) sorts before hebergement (rank 1) by name and is inserted first:
    # only the rank can make the shelter win
    wh.record("accueils_jour", 1, 1, "2025-01-31", "RUE")
    wh.record("hebergement", 1, 1, "2025-01-31", "MISE_ABRI", programme="CHU")
    wh.observe(JAN)
    assert wh.row(JAN, 1)["situation"] == "MISE_ABRI"
    assert wh.row(JAN, 1)["ethos"] == "2"


def test_later_evidence_wins_whatever_the_rank(warehouse):
    wh = warehouse
    wh.record("hebergement", 1, 1, "2025-01-20", "HEB_INSERTION", programme="CHRS")
    wh.record("accueils_jour", 1, 1, "2025-01-25", "TIERS")
    wh.observe(JAN)
    assert wh.row(JAN, 1)["situation"] == "TIERS"
    assert wh.value(JAN, "stock_households", "situation=TIERS") == 1
    assert wh.value(JAN, "stock_households", "ethos=6") == 1


def test_a_broad_situation_is_made_precise_by_an_earlier_precise_one(warehouse):
    wh = warehouse
    # household 1: the 115 placed it in an emergency shelter, then its SNE application says
    # "in a shelter" (SH, read as insertion accommodation): it is still the emergency shelter
    wh.record("siao_urgence", 1, 1, "2025-01-10", "MISE_ABRI", request_fulfilled=True)
    wh.record("sne", 1, 1, "2025-01-20", "HEB_INSERTION")
    # household 2: the same SNE word and nothing more precise: insertion accommodation
    wh.record("sne", 2, 2, "2025-01-20", "HEB_INSERTION")
    # household 3: a precise word that SH cannot mean (the street) does not refine it
    wh.record("maraudes", 3, 3, "2025-01-10", "RUE")
    wh.record("sne", 3, 3, "2025-01-20", "HEB_INSERTION")
    wh.observe(JAN)
    assert [wh.row(JAN, h)["situation"] for h in (1, 2, 3)] == [
        "MISE_ABRI",
        "HEB_INSERTION",
        "HEB_INSERTION",
    ]


# ---------------------------------------------------------------- identity over time


def test_two_households_found_to_be_one_are_a_duplicate_merged_outflow(warehouse):
    wh = warehouse
    wh.record("maraudes", 1, 1, "2025-01-10", "RUE")
    wh.record("siao_urgence", 2, 2, "2025-01-12", "RUE")
    wh.observe(JAN)
    # February: linkage finds persons 1 and 2 to be one; the oldest ids survive
    wh.alias_person(FEB, 2, 1)
    wh.alias_household(FEB, 2, 1)
    wh.record("siao_urgence", 1, 1, "2025-02-03", "RUE")
    wh.observe(FEB)

    assert wh.stock(JAN, FEB) == [2, 1]
    assert wh.events(FEB) == {(2, "outflow", "duplicate_merged", None, 1)}
    assert wh.value(FEB, "outflow_households", "type=duplicate_merged") == 1
    assert balance_holds(stock_balance(wh.conn, FEB))
    assert wh.row(FEB, 2) is None  # January's records of person 2 now count for household 1
    assert wh.row(FEB, 1)["persons"] == 1
    assert wh.row(FEB, 1)["first_month_seen"] == JAN


def test_a_household_some_of_whose_persons_moved_on_stays_itself_and_does_not_flicker(
    warehouse,
):
    """Persons 2 and 3 of household 1 are found in household 5 from February; person 1 stays
    in household 1. Household 1 is still someone's household: it is not merged into 5. Mapped
    to 5 (where most of its persons are now), it left the stock as a duplicate and came back
    as a return every month (both households active throughout)."""
    wh = warehouse
    for person in (1, 2, 3):
        wh.record("hebergement", person, 1, "2025-01-31", "MISE_ABRI", programme="CHU")
    for month in ("2025-02-28", "2025-03-31", "2025-04-30"):
        wh.record("hebergement", 1, 1, month, "MISE_ABRI", programme="CHU")
        for person in (2, 3):
            wh.record("siao_urgence", person, 5, month, "HOTEL")
    wh.observe(JAN, FEB, MAR, APR)

    assert wh.stock(JAN, FEB, MAR, APR) == [1, 2, 2, 2]
    assert wh.events(FEB) == {(5, "inflow", "returned_from_inactivity", None, None)}
    assert wh.events(MAR) == set()
    assert wh.events(APR) == set()
    assert [wh.row(APR, h)["persons"] for h in (1, 5)] == [1, 2]
    for month in (FEB, MAR, APR):
        assert balance_holds(stock_balance(wh.conn, month))


def test_look_back_decides_between_newly_identified_and_returned(new_warehouse):
    def seen_in_january_and_may(lookback_months):
        wh = new_warehouse()
        wh.record("maraudes", 1, 1, "2025-01-10", "RUE")
        wh.record("maraudes", 1, 1, "2025-05-20", "RUE")
        wh.observe(JAN, FEB, MAR, APR, MAY, lookback_months=lookback_months)
        assert wh.events(APR) == {(1, "outflow", "to_inactivity", None, None)}
        return wh.events(MAY)

    assert seen_in_january_and_may(1) == {(1, "inflow", "newly_identified", None, None)}
    assert seen_in_january_and_may(24) == {(1, "inflow", "returned_from_inactivity", None, None)}


# ---------------------------------------------------------------- needs and answers


def test_an_open_sne_application_is_an_open_request(warehouse):
    wh = warehouse
    wh.record("sne", 1, 1, "2025-01-05", "TIERS", need_type="sne", need_status="open")
    wh.observe(JAN)
    assert wh.row(JAN, 1)["open_needs"] == ["sne"]
    assert wh.value(JAN, "households_with_open_request", "need=sne") == 1


def test_a_priority_label_counts_its_wait_until_housing(warehouse):
    wh = warehouse
    wh.record(
        "syplo",
        1,
        1,
        "2025-01-06",
        "HOTEL",
        need_type="syplo",
        need_status="open",
        need_since="2024-10-01",
    )
    wh.observe(JAN)
    assert wh.row(JAN, 1)["priority_since"] == date(2024, 10, 1)
    assert wh.value(JAN, "priority_not_housed") == 1
    assert wh.value(JAN, "median_months_waiting_priority") == 3


def test_coverage_lists_every_source_and_what_only_it_sees(warehouse):
    wh = warehouse
    wh.record("maraudes", 1, 1, "2025-01-10", "RUE")
    wh.record("maraudes", 2, 2, "2025-01-11", "RUE")
    wh.record("siao_urgence", 2, 2, "2025-01-12", "RUE")
    wh.observe(JAN)
    assert wh.value(JAN, "households_seen_by_source", "source=maraudes") == 2
    assert wh.value(JAN, "households_seen_only_by_source", "source=maraudes") == 1
    assert wh.value(JAN, "households_seen_only_by_source", "source=siao_urgence") == 0
    assert wh.value(JAN, "households_seen_by_source", "source=dalo") == 0


def test_a_household_of_one_nobody_described_takes_its_composition_from_the_person(warehouse):
    wh = warehouse
    wh.record("accueils_jour", 1, 1, "2025-01-10", "RUE", sex="F")
    wh.record("accueils_jour", 2, 2, "2025-01-10", "RUE")  # sex unknown
    wh.record("accueils_jour", 3, 3, "2025-01-10", "RUE", sex="M", age_band="0-17")
    wh.record("siao_urgence", 4, 4, "2025-01-10", "RUE", sex="M", composition="groupe_adultes")
    wh.observe(JAN)
    assert [wh.row(JAN, h)["composition"] for h in (1, 2, 3, 4)] == [
        "femme_seule",
        "inconnue",
        "mineur_isole",
        "groupe_adultes",  # what a source said wins
    ]
    assert wh.value(JAN, "stock_households", "composition=inconnue") == 1
    assert wh.row(JAN, 1)["ethos"] == "1"


def test_115_requests_count_once_per_request_not_per_person(warehouse):
    wh = warehouse
    for person in (1, 2):  # a 115 request lists every person of the household
        wh.record(
            "siao_urgence",
            person,
            1,
            "2025-01-07",
            "RUE",
            need_type="urgence",
            record_token="req-A",
            request_fulfilled=False,
        )
        wh.record(
            "siao_urgence",
            person,
            1,
            "2025-01-09",
            "MISE_ABRI",
            need_type="urgence",
            record_token="req-B",
            request_fulfilled=True,
        )
    wh.observe(JAN)
    row = wh.row(JAN, 1)
    assert (row["urgence_requests"], row["urgence_not_fulfilled"]) == (2, 1)
    assert row["open_needs"] == ["urgence"]
    assert row["answers"] == ["shelter"]
    assert row["needs_answered"] == ["urgence"]
    assert row["persons"] == 2
    assert wh.value(JAN, "urgence_requests_not_fulfilled") == 1
    assert wh.value(JAN, "households_urgence_not_fulfilled") == 1
    assert wh.value(JAN, "answers_received", "answer=shelter") == 1
    assert wh.value(JAN, "requests_answered", "need=urgence") == 1


def test_a_shelter_entry_is_an_answer_in_its_month_only(warehouse):
    wh = warehouse
    for end in ("2025-01-31", "2025-02-28"):  # listed present at the end of both months
        wh.record("hebergement", 1, 1, end, "MISE_ABRI", programme="CHU", entry_date="2025-01-06")
    wh.observe(JAN, FEB)
    assert wh.row(JAN, 1)["answers"] == ["shelter"]
    assert wh.row(FEB, 1)["answers"] == []
    assert wh.value(FEB, "answers_received", "answer=shelter") is None


@pytest.mark.parametrize(
    ("programme", "situation"),
    [("IML", "LOG_TEMP"), ("PENSION_DE_FAMILLE", "LOGE"), ("UN_CHEZ_SOI_DABORD", "LOGE")],
)
def test_an_adapted_housing_entry_is_an_answer_in_its_month_only(warehouse, programme, situation):
    """logement_accompagne lists the households present at the end of each month, with their
    entry date: the answer was given at entry, not again every month they are listed."""
    wh = warehouse
    for end in ("2025-02-28", "2025-03-31"):
        wh.record(
            "logement_accompagne",
            1,
            1,
            end,
            situation,
            programme=programme,
            entry_date="2025-02-10",
        )
    wh.observe(FEB, MAR)
    assert wh.row(FEB, 1)["answers"] == ["adapted_housing"]
    assert wh.row(MAR, 1)["answers"] == []
    assert wh.value(MAR, "answers_received", "answer=adapted_housing") is None


# ---------------------------------------------------------------- an exit followed by a return


@pytest.mark.parametrize("silent_record", [False, True])
def test_a_housing_exit_followed_by_a_return_does_not_count_again_once_out_of_sight(
    warehouse, silent_record
):
    """Housed in January, back on the street in February, then no homelessness evidence for
    90 days: May's outflow is to inactivity, whether or not a record that says nothing
    about where the household sleeps (a day-centre visit, situation INCONNU) is in May."""
    wh = warehouse
    housing_exit(wh, "hebergement", 1, 1, "2025-01-10", "housing_social")
    wh.record("maraudes", 1, 1, "2025-02-05", "RUE")
    if silent_record:
        wh.record("accueils_jour", 1, 1, "2025-05-15", "INCONNU")
    wh.observe(JAN, FEB, MAR, APR, MAY)

    assert wh.events(FEB) == {(1, "inflow", "returned_from_housing", None, None)}
    assert wh.stock(FEB, MAR, APR, MAY) == [1, 1, 1, 0]
    assert wh.events(MAY) == {(1, "outflow", "to_inactivity", None, None)}
    if silent_record:
        # records in the window, none saying where it sleeps; the January exit was followed
        # by homelessness evidence in a later month, so the household is not housed
        assert wh.row(MAY, 1)["status"] == "inactive"
        assert wh.value(MAY, "mean_months_to_housing") is None


# ---------------------------------------------------------------- rules and checks


def three_households(wh):
    for person, situation in ((1, "RUE"), (2, "TIERS"), (3, "HOTEL")):
        wh.record("accueils_jour", person, person, "2025-01-20", situation)
    wh.record("accueils_jour", 1, 1, "2025-02-20", "SQUAT")
    wh.observe(JAN, FEB)


def test_a_clean_month_passes_every_check(warehouse):
    three_households(warehouse)
    for month in (JAN, FEB):
        assert balance_holds(stock_balance(warehouse.conn, month))
        assert parts_mismatches(warehouse.conn, month) == []
        assert duplicate_household_months(warehouse.conn, month) == 0
        assert untraced_household_months(warehouse.conn, month) == 0


def test_the_balance_check_fails_on_a_wrong_stock(warehouse):
    three_households(warehouse)
    warehouse.conn.execute(
        "UPDATE marts.indicators SET value = value + 1 WHERE month = ? "
        "AND indicator = 'stock_households' AND dimension IS NULL",
        [FEB],
    )
    assert not balance_holds(stock_balance(warehouse.conn, FEB))
    assert "stock_households by situation: parts 3.0, total 4.0" in parts_mismatches(
        warehouse.conn, FEB
    )


def test_the_parts_check_fails_on_an_extra_part(warehouse):
    three_households(warehouse)
    warehouse.conn.execute(
        "INSERT INTO marts.indicators VALUES (?, 'inflow_households', 'type=newly_identified', 1)",
        [FEB],
    )
    assert balance_holds(stock_balance(warehouse.conn, FEB))  # the totals are untouched
    assert parts_mismatches(warehouse.conn, FEB) == [
        "inflow_households by type: parts 1.0, total 0.0"
    ]


def test_the_provenance_check_fails_on_an_untraced_household_month(warehouse):
    three_households(warehouse)
    warehouse.conn.execute(
        "DELETE FROM core.provenance WHERE month = ? AND household_id = 2", [FEB]
    )
    assert untraced_household_months(warehouse.conn, FEB) == 1
    assert untraced_household_months(warehouse.conn, JAN) == 0


def test_the_duplicate_check_fails_on_a_second_row(warehouse):
    three_households(warehouse)
    warehouse.conn.execute(
        "INSERT INTO core.household_months SELECT * FROM core.household_months "
        "WHERE month = ? AND household_id = 3",
        [FEB],
    )
    assert duplicate_household_months(warehouse.conn, FEB) == 1
    assert duplicate_household_months(warehouse.conn, JAN) == 0


def test_recomputing_a_month_changes_nothing_and_the_balance_holds_every_month(warehouse):
    wh = warehouse
    wh.record("maraudes", 1, 1, "2025-01-10", "RUE")
    wh.record("hebergement", 2, 2, "2025-01-31", "HOTEL", programme="HOTEL")
    housing_exit(wh, "hebergement", 2, 2, "2025-03-12", "housing_first")
    wh.record("accueils_jour", 3, 3, "2025-03-03", "TIERS")
    wh.record(
        "siao_urgence", 4, 4, "2025-02-14", "RUE", need_type="urgence", request_fulfilled=False
    )
    months = (JAN, FEB, MAR, APR, MAY, JUN)
    wh.observe(*months)
    before = {name: wh.table(name) for name in CORE}

    observe_month(wh.conn, Window(MAR))
    observe_month(wh.conn, Window(MAR))
    wh.observe(MAR)
    assert {name: wh.table(name) for name in CORE} == before

    for month in months:
        assert balance_holds(stock_balance(wh.conn, month)), month
        assert parts_mismatches(wh.conn, month) == [], month
    assert wh.stock(*months) == [2, 3, 3, 2, 1, 0]
    assert wh.events(MAR) == {
        (2, "outflow", "to_housing", "housing_first", None),
        (3, "inflow", "newly_identified", None, None),
    }


# ---------------------------------------------------------------- alias resolution


M = {i: date(2025, i, 1) for i in range(1, 8)}


def test_an_alias_chain_is_followed_to_its_end():
    chain = AliasResolver([(M[3], 10, 20), (M[5], 20, 30)])
    assert chain.resolve(10, M[1]) == 30  # March sends it to 20, May sends 20 on to 30
    assert chain.resolve(20, M[4]) == 30
    assert chain.resolve(20, M[5]) == 20  # an alias applies to ids seen before its month
    assert chain.resolve(30, M[1]) == 30
    assert chain.resolve(99, M[1]) == 99


def test_an_id_retired_then_claimed_again_resolves_by_when_it_was_seen():
    back = AliasResolver([(M[3], 10, 20), (M[5], 20, 10)])
    assert back.resolve(10, M[1]) == 10  # to 20 in March, back to 10 in May
    assert back.resolve(20, M[1]) == 10
    assert back.resolve(20, M[4]) == 10
    assert back.resolve(10, M[6]) == 10  # the claimed-again id, seen after both moves
    # the same aliases given in another order resolve the same
    assert AliasResolver([(M[5], 20, 10), (M[3], 10, 20)]).resolve(10, M[2]) == 10
    # without the move back, an id retired in March stays with its survivor
    assert AliasResolver([(M[3], 10, 20)]).resolve(10, M[2]) == 20
