"""Observation rules (DOMAIN §3-4) on a hand-built warehouse: a few records, the exact outcome."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pytest

from synchro_dagster.identity.persons import ensure_tables
from synchro_dagster.indicators.build import (
    balance_holds,
    indicators_month,
    parts_mismatches,
    stock_balance,
)
from synchro_dagster.observation.build import Window, observe_month
from synchro_dagster.observation.checks import (
    duplicate_household_months,
    untraced_household_months,
)
from synchro_dagster.observation.ids import AliasResolver

COLUMNS = {
    "source": "VARCHAR",
    "month": "DATE",
    "file_sha256": "VARCHAR",
    "row_number": "BIGINT",
    "record_token": "VARCHAR",
    "sex": "VARCHAR",
    "age_band": "VARCHAR",
    "composition": "VARCHAR",
    "household_size": "BIGINT",
    "situation": "VARCHAR",
    "event_date": "DATE",
    "need_type": "VARCHAR",
    "need_status": "VARCHAR",
    "need_since": "DATE",
    "request_fulfilled": "BOOLEAN",
    "programme": "VARCHAR",
    "entry_date": "DATE",
    "exit_date": "DATE",
    "exit_destination": "VARCHAR",
}


def d(text: str) -> date:
    return date.fromisoformat(text)


def first_of(day: date) -> date:
    return day.replace(day=1)


class Warehouse:
    """Staged records with their identity links, written the way the pipeline writes them."""

    def __init__(self) -> None:
        self.conn = duckdb.connect()
        ensure_tables(self.conn)
        self.conn.execute("CREATE SCHEMA staging")
        self.rows = 0

    def record(self, source: str, person: int, household: int, day: str, **cells) -> None:
        """One staged row dated `day`, delivered in that day's month (or `month=`)."""
        event = d(day)
        month = cells.pop("month", first_of(event))
        self.rows += 1
        sha = f"{source[:4]}{month:%Y%m}".ljust(64, "0")
        values = {
            "source": source,
            "month": month,
            "file_sha256": sha,
            "row_number": self.rows,
            "event_date": event,
            **cells,
        }
        columns = ", ".join(f"{c} {t}" for c, t in COLUMNS.items())
        self.conn.execute(f"CREATE TABLE IF NOT EXISTS staging.{source} ({columns})")
        names = list(values)
        self.conn.execute(
            f"INSERT INTO staging.{source} ({', '.join(names)}) VALUES "
            f"({', '.join('?' for _ in names)})",
            list(values.values()),
        )
        self.conn.execute(
            "INSERT INTO identity.person_links VALUES (?, ?, ?, ?)",
            [month, f"{source}:{sha}:{self.rows}", source, person],
        )
        seen = self.conn.execute(
            "SELECT count(*) FROM identity.households WHERE month = ? AND person_id = ?",
            [month, person],
        ).fetchall()[0][0]
        if not seen:
            self.conn.execute(
                "INSERT INTO identity.households VALUES (?, ?, ?)", [month, household, person]
            )

    def alias(self, table: str, month: date, old: int, new: int) -> None:
        self.conn.execute(f"INSERT INTO identity.{table} VALUES (?, ?, ?)", [month, old, new])

    def observe(self, *months: date, inactivity_days: int = 90, lookback_months: int = 24):
        for month in months:
            observe_month(self.conn, Window(month, inactivity_days, lookback_months))
            indicators_month(self.conn, month)

    def row(self, month: date, household: int) -> dict | None:
        found = self.conn.execute(
            "SELECT * FROM core.household_months WHERE month = ? AND household_id = ?",
            [month, household],
        )
        names = [c[0] for c in found.description]
        rows = found.fetchall()
        return dict(zip(names, rows[0], strict=True)) if rows else None

    def events(self, month: date) -> set[tuple]:
        return set(
            self.conn.execute(
                "SELECT household_id, flow, type, housing_kind, merged_into "
                "FROM core.household_events WHERE month = ?",
                [month],
            ).fetchall()
        )

    def value(self, month: date, indicator: str, dimension: str | None = None) -> float | None:
        rows = self.conn.execute(
            "SELECT value FROM marts.indicators WHERE month = ? AND indicator = ? "
            "AND dimension IS NOT DISTINCT FROM ?",
            [month, indicator, dimension],
        ).fetchall()
        return rows[0][0] if rows else None


JAN, FEB, MAR, APR, MAY, JUN = (date(2025, m, 1) for m in range(1, 7))


@pytest.fixture
def wh() -> Warehouse:
    return Warehouse()


def test_street_then_shelter_then_housing(wh):
    wh.record("maraudes", 1, 1, "2025-01-12", situation="RUE")
    wh.record(
        "hebergement",
        1,
        1,
        "2025-02-28",
        situation="MISE_ABRI",
        programme="CHU",
        entry_date=d("2025-02-03"),
    )
    wh.record(
        "hebergement",
        1,
        1,
        "2025-03-10",
        situation="MISE_ABRI",
        programme="CHU",
        entry_date=d("2025-02-03"),
        exit_date=d("2025-03-10"),
        exit_destination="housing_social",
    )
    wh.observe(JAN, FEB, MAR)
    assert wh.events(JAN) == {(1, "inflow", "newly_identified", None, None)}
    assert (wh.row(JAN, 1)["situation"], wh.row(FEB, 1)["situation"]) == ("RUE", "MISE_ABRI")
    assert wh.row(JAN, 1)["ethos"] == "1" and wh.row(FEB, 1)["ethos"] == "2"
    assert wh.row(FEB, 1)["answers"] == ["shelter"]
    housed = wh.row(MAR, 1)
    assert (housed["status"], housed["situation"], housed["housing_kind"]) == (
        "housed",
        "LOGE",
        "social",
    )
    assert housed["answers"] == ["housing_allocation"]
    assert wh.events(MAR) == {(1, "outflow", "to_housing", "social", None)}
    assert [wh.value(m, "stock_households") for m in (JAN, FEB, MAR)] == [1, 1, 0]
    assert wh.value(MAR, "outflow_households", "type=to_housing:social") == 1
    assert wh.value(MAR, "median_months_to_housing") == 2


def test_no_record_for_ninety_days_is_an_outflow_to_inactivity_and_a_return_an_inflow(wh):
    wh.record("accueils_jour", 1, 1, "2025-01-15", situation="RUE")
    wh.record("accueils_jour", 1, 1, "2025-06-03", situation="TIERS")
    wh.observe(JAN, FEB, MAR, APR, MAY, JUN)
    assert [wh.value(m, "stock_households") for m in (JAN, FEB, MAR, APR, MAY, JUN)] == [
        1,
        1,
        1,
        0,
        0,
        1,
    ]
    assert wh.row(APR, 1) is None  # nothing in [end of April - 90 days, end of April]
    assert wh.events(APR) == {(1, "outflow", "to_inactivity", None, None)}
    assert wh.events(JUN) == {(1, "inflow", "returned_from_inactivity", None, None)}
    # a shorter window drops it earlier
    short = Warehouse()
    short.record("accueils_jour", 1, 1, "2025-01-15", situation="RUE")
    short.observe(JAN, FEB, inactivity_days=20)
    assert short.value(FEB, "stock_households") == 0


def test_look_back_decides_between_new_and_returned(wh):
    wh.record("maraudes", 1, 1, "2025-01-10", situation="RUE")
    wh.record("maraudes", 1, 1, "2025-05-20", situation="RUE")
    wh.observe(JAN, FEB, MAR, APR, MAY)
    assert (1, "inflow", "returned_from_inactivity", None, None) in wh.events(MAY)
    short = Warehouse()
    short.record("maraudes", 1, 1, "2025-01-10", situation="RUE")
    short.record("maraudes", 1, 1, "2025-05-20", situation="RUE")
    short.observe(JAN, FEB, MAR, APR, MAY, lookback_months=2)
    assert (1, "inflow", "newly_identified", None, None) in short.events(MAY)


def test_return_from_housing_needs_evidence_in_a_later_month(wh):
    wh.record("maraudes", 1, 1, "2025-01-05", situation="RUE")
    wh.record(
        "siao_insertion",
        1,
        1,
        "2025-02-10",
        situation="MISE_ABRI",
        exit_date=d("2025-02-10"),
        exit_destination="housing_private",
    )
    wh.record("accueils_jour", 1, 1, "2025-02-20", situation="RUE")  # same month: a lag
    wh.record("maraudes", 1, 1, "2025-04-08", situation="RUE")
    wh.observe(JAN, FEB, MAR, APR)
    assert wh.row(FEB, 1)["status"] == "housed"
    assert wh.events(FEB) == {(1, "outflow", "to_housing", "private", None)}
    assert wh.row(MAR, 1)["status"] == "housed"
    assert wh.events(APR) == {(1, "inflow", "returned_from_housing", None, None)}
    assert wh.conn.execute(
        "SELECT months_since_exit FROM core.household_events WHERE month = ?", [APR]
    ).fetchall() == [(2,)]
    assert [wh.value(APR, "returns_from_housing", f"within={n}") for n in (6, 12, 24)] == [1] * 3
    assert wh.value(MAR, "returns_from_housing", "within=6") == 0


def test_latest_evidence_wins_and_source_rank_breaks_same_day_ties(wh):
    wh.record("accueils_jour", 1, 1, "2025-01-31", situation="RUE")
    wh.record("hebergement", 1, 1, "2025-01-31", situation="MISE_ABRI", programme="CHU")
    wh.record("hebergement", 2, 2, "2025-01-20", situation="HEB_INSERTION", sex="F")
    wh.record("accueils_jour", 2, 2, "2025-01-25", situation="TIERS")
    wh.observe(JAN)
    # nobody gave a composition: one woman alone is femme_seule, one person of unknown sex
    # stays unknown
    assert wh.row(JAN, 2)["composition"] == "femme_seule"
    assert wh.row(JAN, 1)["composition"] == "inconnue"
    assert wh.row(JAN, 1)["situation"] == "MISE_ABRI"  # rank 1 beats rank 6
    assert wh.row(JAN, 2)["situation"] == "TIERS"  # later, whatever the rank
    assert wh.value(JAN, "stock_households", "situation=TIERS") == 1
    assert wh.value(JAN, "stock_households", "ethos=6") == 1


def test_death_and_departure_reported_by_a_source_are_outflows(wh):
    for person in (1, 2):
        wh.record("hebergement", person, person, "2025-01-31", situation="MISE_ABRI")
    wh.record(
        "hebergement",
        1,
        1,
        "2025-02-14",
        situation="MISE_ABRI",
        exit_date=d("2025-02-14"),
        exit_destination="deceased",
    )
    wh.record(
        "hebergement",
        2,
        2,
        "2025-02-16",
        situation="MISE_ABRI",
        exit_date=d("2025-02-16"),
        exit_destination="left_territory",
    )
    wh.observe(JAN, FEB)
    assert wh.events(FEB) == {
        (1, "outflow", "deceased", None, None),
        (2, "outflow", "left_territory", None, None),
    }
    assert wh.row(FEB, 1)["status"] == "deceased" and wh.row(FEB, 2)["status"] == "left_territory"


def test_two_households_found_to_be_one_leave_a_visible_correction(wh):
    wh.record("maraudes", 1, 1, "2025-01-10", situation="RUE")
    wh.record("siao_urgence", 2, 2, "2025-01-12", situation="RUE")
    wh.observe(JAN)
    # February: a record bridges the two; identity keeps the oldest ids, aliases the other
    wh.alias("person_aliases", FEB, 2, 1)
    wh.alias("household_aliases", FEB, 2, 1)
    wh.record("siao_urgence", 1, 1, "2025-02-03", situation="RUE")
    wh.observe(FEB)
    assert wh.value(JAN, "stock_households") == 2 and wh.value(FEB, "stock_households") == 1
    assert wh.events(FEB) == {(2, "outflow", "duplicate_merged", None, 1)}
    assert balance_holds(stock_balance(wh.conn, FEB))
    assert wh.row(FEB, 2) is None  # January's records of person 2 now count for household 1
    assert set(wh.row(FEB, 1)["sources"]) == {"siao_urgence"}


def test_needs_requests_and_priority(wh):
    wh.record("sne", 1, 1, "2025-01-05", situation="RUE", need_type="sne", need_status="open")
    wh.record(
        "syplo",
        1,
        1,
        "2025-01-06",
        situation="RUE",
        need_type="syplo",
        need_status="open",
        need_since=d("2024-10-01"),
    )
    for person in (1, 2):  # one 115 request lists every person of the household
        wh.record(
            "siao_urgence",
            person,
            1,
            "2025-01-07",
            situation="RUE",
            need_type="urgence",
            record_token="req-A",
            request_fulfilled=False,
        )
        wh.record(
            "siao_urgence",
            person,
            1,
            "2025-01-09",
            situation="MISE_ABRI",
            need_type="urgence",
            record_token="req-B",
            request_fulfilled=True,
        )
    wh.observe(JAN)
    row = wh.row(JAN, 1)
    assert row["open_needs"] == ["sne", "syplo", "urgence"]
    assert (row["urgence_requests"], row["urgence_not_fulfilled"]) == (2, 1)
    assert row["answers"] == ["shelter"] and row["needs_answered"] == ["urgence"]
    assert row["priority_since"] == d("2024-10-01") and row["persons"] == 2
    assert wh.value(JAN, "urgence_requests_not_fulfilled") == 1
    assert wh.value(JAN, "households_with_open_request", "need=sne") == 1
    assert wh.value(JAN, "priority_not_housed") == 1
    assert wh.value(JAN, "median_months_waiting_priority") == 3
    assert wh.value(JAN, "households_seen_only_by_source", "source=sne") == 0
    assert wh.value(JAN, "households_seen_by_source", "source=dalo") == 0  # every source listed
    assert wh.value(JAN, "households_seen_by_source", "source=siao_urgence") == 1


def test_rules_hold_and_the_checks_can_fail(wh):
    for person, situation in ((1, "RUE"), (2, "TIERS"), (3, "HOTEL")):
        wh.record("accueils_jour", person, person, "2025-01-20", situation=situation)
    wh.record("accueils_jour", 1, 1, "2025-02-20", situation="SQUAT")
    wh.observe(JAN, FEB, MAR)
    for month in (JAN, FEB, MAR):
        assert balance_holds(stock_balance(wh.conn, month))
        assert parts_mismatches(wh.conn, month) == []
        assert duplicate_household_months(wh.conn, month) == 0
        assert untraced_household_months(wh.conn, month) == 0
    wh.conn.execute(
        "UPDATE marts.indicators SET value = value + 1 WHERE month = ? AND "
        "indicator = 'stock_households' AND dimension IS NULL",
        [FEB],
    )
    assert not balance_holds(stock_balance(wh.conn, FEB))
    assert parts_mismatches(wh.conn, FEB) == [
        "stock_households by composition: parts 3.0, total 4.0",
        "stock_households by ethos: parts 3.0, total 4.0",
        "stock_households by situation: parts 3.0, total 4.0",
    ]
    wh.conn.execute("DELETE FROM core.provenance WHERE month = ? AND household_id = 2", [MAR])
    assert untraced_household_months(wh.conn, MAR) == 1
    wh.conn.execute(
        "INSERT INTO core.household_months SELECT * FROM core.household_months "
        "WHERE month = ? AND household_id = 3",
        [MAR],
    )
    assert duplicate_household_months(wh.conn, MAR) == 1


def test_recomputing_a_month_changes_nothing(wh):
    wh.record("maraudes", 1, 1, "2025-01-10", situation="RUE")
    wh.record("hebergement", 2, 2, "2025-01-31", situation="HOTEL")
    wh.observe(JAN, FEB)
    before = wh.conn.execute("SELECT * FROM core.household_months ORDER BY ALL").fetchall()
    wh.observe(FEB)
    assert wh.conn.execute("SELECT * FROM core.household_months ORDER BY ALL").fetchall() == before
    assert balance_holds(stock_balance(wh.conn, FEB))


def test_alias_chains_follow_time():
    m = [date(2025, i, 1) for i in range(1, 8)]
    chain = AliasResolver([(m[2], 10, 20), (m[4], 20, 30)])
    assert chain.resolve(10, m[0]) == 30
    assert chain.resolve(20, m[3]) == 30
    assert chain.resolve(30, m[0]) == 30
    # an id retired in March, then given back in May: who was seen when decides
    back = AliasResolver([(m[2], 10, 20), (m[4], 20, 10)])
    assert back.resolve(10, m[0]) == 10  # March sends it to 20, May sends 20 back to 10
    assert back.resolve(20, m[3]) == 10
    assert back.resolve(10, m[5]) == 10  # seen after both moves: itself
    assert back.resolve(20, m[0]) == 10
    assert back.resolve(10, m[2] + timedelta(days=1)) == 10
