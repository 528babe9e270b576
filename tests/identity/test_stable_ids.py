"""Stable person and household ids across months, merges, corrections, family households."""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl
import pytest
from stagekit import FEB, JAN, KEY, MAR, identities, person_of, run, stage

from synchro_dagster.identity.tokens import tokenise


@pytest.fixture
def conn():
    with duckdb.connect() as c:
        yield c


ALICE = ("DUPONT", "Alice", date(1980, 3, 14), "F")
BOB = ("DUPONT", "Bob", date(1978, 7, 2), "M")
CHILD = ("DUPONT", "Léa", date(2015, 9, 30), "F")
OMAR = ("BENALI", "Omar", date(1990, 1, 20), "M")


def test_ids_carry_over_to_the_next_month_and_reruns_change_nothing(conn):
    stage(conn, JAN, [(2, *ALICE, "G1"), (3, *BOB, "G1"), (4, *OMAR, "G2")])
    stage(conn, FEB, [(2, *OMAR, "M7"), (3, "DUPOND", "Alice", ALICE[2], "F", "H5")])
    jan = run(conn, JAN)
    feb = run(conn, FEB)
    assert person_of(feb, 2) == person_of(jan, 4)  # Omar keeps his id
    assert person_of(feb, 3) == person_of(jan, 2)  # Alice, one typo later, too
    assert run(conn, FEB).equals(feb)  # idempotent
    assert set(jan["person_id"]) == {1, 2, 3}  # surrogate, sequential


def test_a_person_seen_alone_belongs_to_the_family_household(conn):
    stage(
        conn,
        JAN,
        [
            (2, *ALICE, "G1"),
            (3, *BOB, "G1"),
            (4, *CHILD, "G1"),
            (5, *ALICE, "115-A"),
            (6, *OMAR, "115-B"),
        ],
    )
    jan = run(conn, JAN)
    alice_alone = jan.filter(pl.col("record_key").str.ends_with(":5"))["household_id"][0]
    family = jan.filter(pl.col("record_key").str.ends_with(":3"))["household_id"][0]
    assert alice_alone == family
    assert jan.filter(pl.col("record_key").str.ends_with(":6"))["household_id"][0] != family


def test_a_family_seen_in_pieces_next_month_stays_one_household(conn):
    stage(conn, JAN, [(2, *ALICE, "G1"), (3, *BOB, "G1"), (4, *CHILD, "G1")])
    # February: the SNE lists Alice alone, a shelter lists Bob and the child
    stage(conn, FEB, [(2, *ALICE, "SNE-1"), (3, *BOB, "CHU-9"), (4, *CHILD, "CHU-9")])
    jan, feb = run(conn, JAN), run(conn, FEB)
    assert (
        set(feb["household_id"]) == set(jan["household_id"]) and feb["household_id"].n_unique() == 1
    )
    churn = dict(
        conn.execute(
            "SELECT kind, n FROM identity.churn WHERE month = ? AND entity = 'household'", [FEB]
        ).fetchall()
    )
    assert churn["split"] == 0


def test_a_spouse_declared_alone_after_living_as_a_couple_is_a_new_household(conn):
    stage(conn, JAN, [(2, *ALICE, "G1"), (3, *BOB, "G1"), (4, *CHILD, "G1")])
    stage(
        conn,
        FEB,
        [(2, *ALICE, "G1"), (4, *CHILD, "G1"), (3, *BOB, "115-B", "homme_seul")],
    )
    jan, feb = run(conn, JAN), run(conn, FEB)
    family = jan["household_id"][0]
    bob = feb.filter(pl.col("record_key").str.ends_with(":3"))["household_id"][0]
    alice = feb.filter(pl.col("record_key").str.ends_with(":2"))["household_id"][0]
    assert alice == family and bob != family


def test_a_merge_of_a_merge_is_followed_to_todays_id(conn):
    stage(conn, JAN, [(2, *ALICE, "G1"), (3, *BOB, "G2"), (4, *OMAR, "G3")])
    jan = run(conn, JAN)
    omar = person_of(jan, 4)
    # later months merged Omar's id into Bob's, then Bob's into Alice's (as linkage would)
    conn.execute("INSERT INTO identity.person_aliases VALUES (?, ?, ?)", [FEB, omar, 2])
    conn.execute("INSERT INTO identity.person_aliases VALUES (?, ?, ?)", [date(2025, 3, 1), 2, 1])
    april = date(2025, 4, 1)
    stage(conn, april, [(2, *OMAR, "G3")])
    assert person_of(run(conn, april), 2) == 1  # not 2, an id retired in March


def test_a_record_bridging_two_known_persons_merges_them_and_the_oldest_id_survives(conn):
    born = date(1990, 1, 20)
    stage(
        conn,
        JAN,
        [
            (2, "BENALI", "Omar", None, "M", None),  # no birth date
            (3, "BNALI", "Omer", born, "M", None),
        ],
    )  # a typo in each name
    jan = run(conn, JAN)
    assert jan["person_id"].n_unique() == 2  # too little to say it is one person
    stage(conn, FEB, [(2, "BENALI", "Omar", born, "M", None)])  # matches both
    feb = run(conn, FEB)
    assert person_of(feb, 2) == 1
    aliases = conn.execute("SELECT alias_id, person_id FROM identity.person_aliases").fetchall()
    assert aliases == [(2, 1)]
    churn = dict(
        conn.execute(
            "SELECT kind, n FROM identity.churn WHERE entity = 'person' AND month = ?", [FEB]
        ).fetchall()
    )
    assert churn == {"created": 0, "merged": 1, "split": 0}


FATHER = ("LANOT", "Pierre", date(1970, 8, 22), "M")
SON = ("LANOT", "Pierre", date(2016, 8, 2), "M")


def test_an_undated_record_does_not_chain_a_father_to_his_namesake_son(conn):
    # January: the father, and a street team's record of "Pierre LANOT" without a birth date
    stage(conn, JAN, [(2, *FATHER, "G1"), (3, "LANOT", "Pierre", None, "M", None)])
    jan = run(conn, JAN)
    father = person_of(jan, 2)
    assert person_of(jan, 3) == father
    # February: the son, born 46 years later, is met; the old undated record matches him as
    # well as his father, but the two birth dates say two persons
    stage(conn, FEB, [(2, *SON, "G1"), (3, *FATHER, "G1")], source="siao_urgence")
    feb = run(conn, FEB)
    assert person_of(feb, 3) == father
    assert person_of(feb, 2) != father
    assert conn.execute("SELECT count(*) FROM identity.person_aliases").fetchall() == [(0,)]


def test_two_rows_of_one_household_listing_are_two_persons(conn):
    # an occupancy list names each person of a household once a month: the son's row without a
    # birth date is not his father, although the names are the same
    rows = [(2, *FATHER, "H1"), (3, "LANOT", "Pierre", None, "M", "H1")]
    stage(conn, JAN, rows, source="hebergement")
    jan = run(conn, JAN)
    assert person_of(jan, 2) != person_of(jan, 3)
    # the same two rows from a source that may list a person twice (one row per 115 call) are
    # one person
    with duckdb.connect() as other:
        stage(other, JAN, rows, source="siao_urgence")
        calls = run(other, JAN)
    assert person_of(calls, 2) == person_of(calls, 3)


def _name_token(last: str, first: str) -> str:
    return tokenise(identities([(last, first, None, None)]), KEY)["tok_name"][0]


def test_never_and_always_link_corrections_are_respected(conn):
    # two brothers, one letter apart and born the same day: the model joins them
    stage(
        conn,
        JAN,
        [
            (2, "MARTIN", "Paul", date(1990, 5, 5), "M", None),
            (3, "MARTIN", "Pau", date(1990, 5, 5), "M", None),
            (4, "KONE", "Awa", date(1985, 2, 2), "F", None),
            (5, "TRAORE", "Awa", date(1986, 7, 15), "F", None),
        ],
    )
    first = run(conn, JAN)
    assert person_of(first, 2) == person_of(first, 3)
    assert person_of(first, 4) != person_of(first, 5)
    conn.execute(
        "INSERT INTO identity.corrections (token_a, token_b, rule, note) VALUES "
        "(?, ?, 'never', 'brothers'), (?, ?, 'always', 'married name, birth date mistyped')",
        [
            _name_token("MARTIN", "Paul"),
            _name_token("MARTIN", "Pau"),
            _name_token("KONE", "Awa"),
            _name_token("TRAORE", "Awa"),
        ],
    )
    conn.execute("DELETE FROM identity.person_links")
    again = run(conn, JAN)
    assert person_of(again, 2) != person_of(again, 3)
    assert person_of(again, 4) == person_of(again, 5)


MAMADOU_85 = ("DIALLO", "Mamadou", date(1985, 3, 2), "M")
MAMADOU_90 = ("DIALLO", "Mamadou", date(1990, 11, 1), "M")
AISSATA = ("DIALLO", "Aissata", date(1988, 6, 9), "F")


def _namesakes(conn) -> pl.DataFrame:
    """January: two dated namesakes, the younger (row 4, the newer id: what no tie-break
    picks) living with Aïssata in partner household G7."""
    stage(conn, JAN, [(2, *MAMADOU_85, "G8"), (3, *AISSATA, "G7"), (4, *MAMADOU_90, "G7")])
    return run(conn, JAN)


@pytest.mark.parametrize("typed", ["DIALO", "DIALLOU"])
def test_a_partner_household_seen_again_tells_which_namesake(conn, typed):
    jan = _namesakes(conn)
    stage(conn, FEB, [(2, typed, "Mamadou", None, "M", "G7")])
    assert person_of(run(conn, FEB), 2) == person_of(jan, 4)
    assert _ambiguity(conn, FEB)["ambiguous"] == 0  # the household settled it


def _ambiguity(conn, month: date) -> dict[str, int]:
    return dict(
        conn.execute(
            "SELECT kind, n FROM identity.churn WHERE month = ? AND entity = 'record'", [month]
        ).fetchall()
    )


def test_an_undated_record_two_namesakes_fit_equally_joins_the_one_seen_last(conn):
    jan = _namesakes(conn)
    stage(conn, FEB, [(2, *MAMADOU_85, "115-Y")])
    stage(conn, MAR, [(2, "DIALO", "Mamadou", None, "M", "115-X")])
    run(conn, FEB)
    mar = run(conn, MAR)
    assert person_of(mar, 2) == person_of(jan, 2)  # the 1985 Mamadou, seen in February
    assert _ambiguity(conn, MAR) == {
        "ambiguous": 1,
        "ambiguous_tied": 0,
        "one_of_several": 0,
        "by_household": 0,
    }


def test_namesakes_seen_last_in_the_same_month_are_a_tie_counted_as_such(conn):
    jan = _namesakes(conn)
    stage(conn, FEB, [(2, "DIALO", "Mamadou", None, "M", "115-X")])
    feb = run(conn, FEB)
    assert person_of(feb, 2) == person_of(jan, 2)  # the tie goes to the oldest id
    assert _ambiguity(conn, FEB) == {
        "ambiguous": 1,
        "ambiguous_tied": 1,
        "one_of_several": 0,
        "by_household": 0,
    }
    # it joined one namesake and did not chain the two into one person
    assert conn.execute("SELECT count(*) FROM identity.person_aliases").fetchall() == [(0,)]


def test_a_companion_already_known_tells_which_namesake(conn):
    jan = _namesakes(conn)
    # a 115 request names Mamadou (undated) with Aïssata: his household is the one she lives in
    stage(conn, FEB, [(2, "DIALO", "Mamadou", None, "M", "115-X"), (3, *AISSATA, "115-X")])
    feb = run(conn, FEB)
    assert person_of(feb, 3) == person_of(jan, 3)
    assert person_of(feb, 2) == person_of(jan, 4)
    assert _ambiguity(conn, FEB)["ambiguous"] == 0


MOUSSA = ("KONE", "Moussa", date(1979, 4, 11), "M")
AWA = ("KONE", "Awa", date(1983, 12, 2), "F")


@pytest.mark.parametrize("with_awa", [True, False])
def test_a_weak_pair_to_a_companions_household_member_is_that_member(conn, with_awa):
    """February: 'KONNE Mousa', undated, two typos: a weak pair to Moussa only. Listed with Awa,
    who lived with Moussa in January, he is Moussa; listed alone, nothing says so."""
    stage(conn, JAN, [(2, *MOUSSA, "G5"), (3, *AWA, "G5"), (4, *OMAR, "G6")])
    jan = run(conn, JAN)
    feb_rows = [(2, "KONNE", "Mousa", None, "M", "115-Z")]
    if with_awa:
        feb_rows.append((3, *AWA, "115-Z"))
    stage(conn, FEB, feb_rows)
    feb = run(conn, FEB)
    assert (person_of(feb, 2) == person_of(jan, 2)) is with_awa
    assert _ambiguity(conn, FEB)["by_household"] == int(with_awa)


def test_a_new_person_of_several_records_beside_a_companion_joins_her_household_member(conn):
    """The same, with Moussa's February record seen twice (the 115 and a day centre): a new
    person of two records, not one, whose weak pairs point to Moussa."""
    stage(conn, JAN, [(2, *MOUSSA, "G5"), (3, *AWA, "G5"), (4, *OMAR, "G6")])
    jan = run(conn, JAN)
    stage(
        conn,
        FEB,
        [
            (2, "KONNE", "Mousa", None, "M", "115-Z"),
            (3, *AWA, "115-Z"),
            (4, "KONNE", "Mousa", None, "M", "AJ-4"),
        ],
    )
    feb = run(conn, FEB)
    assert person_of(feb, 2) == person_of(feb, 4) == person_of(jan, 2)
    assert _ambiguity(conn, FEB)["by_household"] == 1


KARIM = ("HADDAD", "Karim", date(1975, 5, 5), "M")
SAMIRA = ("HADDAD", "Samira", date(1979, 8, 19), "F")
NADIA = ("BENALI", "Nadia", date(1992, 2, 2), "F")


def test_a_name_alone_does_not_take_a_person_out_of_the_family_listing_her(conn):
    """February: an undated 'BENALI Omar' is listed with Samira. The only Omar BENALI known
    lives with Nadia; the partner lists this one with another family, and a name is all that
    says otherwise: he is someone of Samira's household, and the two households stay apart."""
    stage(conn, JAN, [(2, *OMAR, "G1"), (3, *NADIA, "G1"), (4, *KARIM, "G2"), (5, *SAMIRA, "G2")])
    jan = run(conn, JAN)
    stage(conn, FEB, [(2, "BENALI", "Omar", None, "M", "115-Q"), (3, *SAMIRA, "115-Q")])
    feb = run(conn, FEB)
    household = dict(zip(jan["person_id"], jan["household_id"], strict=True))
    assert person_of(feb, 2) not in set(jan["person_id"])
    samira = feb.filter(pl.col("record_key").str.ends_with(":3"))
    assert feb["household_id"].n_unique() == 1
    assert samira["household_id"][0] == household[person_of(jan, 5)]
    assert conn.execute("SELECT count(*) FROM identity.household_aliases").fetchall() == [(0,)]


def test_a_name_alone_still_finds_a_person_listed_with_her_own_family(conn):
    """The same undated record listed with Nadia, who lives with Omar: he is Omar."""
    stage(conn, JAN, [(2, *OMAR, "G1"), (3, *NADIA, "G1"), (4, *KARIM, "G2"), (5, *SAMIRA, "G2")])
    jan = run(conn, JAN)
    stage(conn, FEB, [(2, "BENALI", "Omar", None, "M", "115-Q"), (3, *NADIA, "115-Q")])
    assert person_of(run(conn, FEB), 2) == person_of(jan, 2)
