"""Monthly dynamics of the simulated territory: who is without a home, where, and who gets out.

The territory is a set of households made of persons. Each month every
household without a home may move between situations, be housed, leave the
territory or die; housed households may come back; new households arrive;
a child may be born and a couple may separate. The result is, per month, one
`HouseholdMonth` per household that was without a home at some point of the
month, plus the true state of every household known so far.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

from synchro_dagster.synthetic import names
from synchro_dagster.synthetic.params import HOUSING_KINDS, TerritoryParams

FAMILIES = {"famille_monoparentale", "couple_avec_enfants"}
COUPLES = {"couple_sans_enfant", "couple_avec_enfants"}


@dataclass(slots=True)
class Person:
    id: int
    identity: names.Identity
    origin: str


@dataclass(slots=True)
class Household:
    id: int
    members: list[int]  # principal first
    composition: str
    situation: str | None  # homeless situation, None once out of homelessness
    status: str  # homeless | housed | deceased | left
    frailty: float
    first_month: int  # month index of the first homeless spell in the simulation
    contact: float  # propensity to meet street services (mean 1, params.HiddenPart)
    situation_since: date | None = None  # when the current situation began
    housed_month: int | None = None
    housing_kind: str | None = None
    request_since: int | None = None  # SI-SIAO insertion request open since
    sne_since: int | None = None
    syplo_since: int | None = None
    dalo_since: int | None = None
    refs: dict[str, str] = field(default_factory=dict)  # household reference per partner


@dataclass(slots=True)
class HouseholdMonth:
    """One household during one month in which it was without a home at some point."""

    household: Household
    month: int
    situation: str  # situation during the month (the last one before an exit)
    previous_situation: str | None  # situation before a move within the month
    change_day: int  # day of the month of the move, entry or exit (1 when nothing changed)
    entry: str | None  # new | returned_from_housing | separation
    exit: str | None  # housing:<kind> | deceased | left
    members: tuple[int, ...]
    since: date  # when `situation` began
    previous_since: date | None  # when `previous_situation` began
    enrolled: dict[str, int]  # partner files open this month: source -> month opened


@dataclass(slots=True)
class TrueState:
    household_id: int
    month: int
    situation: str  # DOMAIN §3 code; LOGE once housed, INCONNU once deceased or gone
    status: str
    composition: str
    persons: int
    housing_kind: str | None  # social | private | adapted | housing_first, once housed


def month_start(start: date, index: int) -> date:
    y, m = divmod(start.month - 1 + index, 12)
    return date(start.year + y, m + 1, 1)


def days_in_month(first: date) -> int:
    nxt = month_start(first, 1)
    return (nxt - first).days


def poisson(rng: random.Random, lam: float) -> int:
    if lam > 50:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def weighted(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


class Territory:
    """Simulates households month after month; deterministic for a seed."""

    def __init__(self, params: TerritoryParams, start: date, seed: int):
        self.p = params
        self.start = start
        self.rng = random.Random(seed)
        # contact is drawn from its own stream: the territory's dynamics stay those of the seed
        self.contact_rng = random.Random(seed + 3)
        self.names = names.Names(params.names)
        self.persons: dict[int, Person] = {}
        self.households: dict[int, Household] = {}
        self._next_person = 1
        self._next_household = 1
        for _ in range(params.households):
            self._new_household(month=0, situations=params.initial_situation)

    # ---------------------------------------------------------------- creation
    def _new_person(self, origin: str, sex: str, born: date, last: str) -> Person:
        ident = names.Identity(
            first_name=self.names.first_name(self.rng, origin, sex),
            birth_last_name=last,
            usage_last_name=None,
            sex=sex,
            birth_date=born,
        )
        person = Person(self._next_person, ident, origin)
        self.persons[person.id] = person
        self._next_person += 1
        return person

    def _new_household(
        self,
        month: int,
        situations: dict[str, float],
        composition: str | None = None,
        members: list[int] | None = None,
    ) -> Household:
        rng, p = self.rng, self.p
        composition = composition or weighted(rng, p.composition_mix)
        if members is None:
            members = [
                m.id for m in self._make_members(composition, month_start(self.start, month))
            ]
        weights = dict(situations)
        if composition in FAMILIES:
            weights = {s: w * p.family_situation_weight.get(s, 1.0) for s, w in weights.items()}
        if composition == "mineur_isole":  # youth care and emergency shelters, not the street
            weights = {s: w * (0.3 if s == "RUE" else 1.0) for s, w in weights.items()}
        hh = Household(
            id=self._next_household,
            members=members,
            composition=composition,
            situation=weighted(rng, weights),
            status="homeless",
            frailty=rng.gammavariate(p.frailty_shape, 1 / p.frailty_shape),
            first_month=month,
            contact=self.contact_rng.gammavariate(
                p.hidden.contact_shape, 1 / p.hidden.contact_shape
            )
            if p.hidden.contact_shape
            else 1.0,
        )
        # households already there at the start have been in their situation for a while
        backdate = int(rng.expovariate(1 / 240)) if month == 0 else 0
        hh.situation_since = month_start(self.start, month) - timedelta(days=backdate)
        if rng.random() < p.sne_initial_share and composition != "mineur_isole":
            hh.sne_since = month
        if month == 0:  # the territory has a history: files opened before the first month
            if hh.situation not in ("RUE", "SQUAT") and rng.random() < p.initial_request_share:
                hh.request_since = 0
            if hh.situation in ("HEB_INSERTION", "HOTEL", "LOG_TEMP") and rng.random() < 0.1:
                hh.syplo_since = 0
        self.households[hh.id] = hh
        self._next_household += 1
        return hh

    def _make_members(self, composition: str, ref: date) -> list[Person]:
        rng = self.rng
        origin = self.names.origin(rng)
        family_name = self.names.last_name(rng, origin)

        def adult(sex: str, lo: float = 18, hi: float = 70, last: str = family_name) -> Person:
            return self._new_person(origin, sex, names.birth_date(rng, ref, lo, hi), last)

        def children(last: str, mother_age: float) -> list[Person]:
            n = 1 + min(4, int(rng.expovariate(0.9)))
            hi = max(1.0, min(17.9, mother_age - 16))
            return [
                self._new_person(origin, rng.choice("MF"), names.birth_date(rng, ref, 0, hi), last)
                for _ in range(n)
            ]

        if composition == "homme_seul":
            return [adult("M", 18, 75)]
        if composition == "femme_seule":
            return [adult("F", 18, 75)]
        if composition == "mineur_isole":
            return [adult(rng.choices("MF", weights=[0.8, 0.2])[0], 15, 17.95)]
        if composition == "groupe_adultes":
            return [
                adult(rng.choice("MF"), 18, 55, self.names.last_name(rng, origin))
                for _ in range(rng.randint(2, 4))
            ]
        if composition == "famille_monoparentale":
            parent = adult(rng.choices("FM", weights=[0.9, 0.1])[0], 19, 50)
            share = self.p.names.single_mother_usage_share
            # no draw when off, so that the default territory stays the same for a seed
            if share and parent.identity.sex == "F" and rng.random() < share:
                parent.identity.birth_last_name = self.names.last_name(rng, origin)
                parent.identity.usage_last_name = family_name
            age = (ref - parent.identity.birth_date).days / 365.25
            return [parent, *children(family_name, age)]
        # couples: the woman may carry a usage name (her husband's) and a birth name
        man = adult("M", 20, 65)
        woman = adult("F", 18, 60, last=self.names.last_name(rng, origin))
        if rng.random() < self.p.names.usage_name_share:
            woman.identity.usage_last_name = family_name
        members = [man, woman]
        if composition == "couple_avec_enfants":
            age = (ref - woman.identity.birth_date).days / 365.25
            members += children(family_name, age)
        return members

    # ---------------------------------------------------------------- dynamics
    def simulate(self, months: int) -> Iterator[tuple[int, list[HouseholdMonth], list[TrueState]]]:
        """Yields, for each month, the household-months without a home and the true states."""
        for month in range(months):
            first = month_start(self.start, month)
            n_days = days_in_month(first)
            seen: list[HouseholdMonth] = []
            if month > 0:
                for _ in range(poisson(self.rng, self.p.households * self.p.inflow_rate)):
                    hh = self._new_household(month, self.p.entry_situation)
                    seen.append(self._entry(hh, month, "new", n_days))
            for hh in list(self.households.values()):
                if hh.first_month == month and month > 0:
                    continue  # arrived this month, already handled
                if hh.status == "homeless":
                    seen.extend(self._homeless_month(hh, month, first, n_days))
                elif hh.status == "housed" and self._returns(hh, month):
                    seen.append(self._entry(hh, month, "returned_from_housing", n_days))
            states = [
                TrueState(
                    hh.id,
                    month,
                    hh.situation
                    if hh.status == "homeless"
                    else "LOGE"
                    if hh.status == "housed"
                    else "INCONNU",
                    hh.status,
                    hh.composition,
                    len(hh.members),
                    hh.housing_kind,
                )
                for hh in self.households.values()
            ]
            yield month, seen, states

    @staticmethod
    def _month_of(
        hh: Household,
        month: int,
        situation: str,
        day: int,
        *,
        entry: str | None = None,
        exit: str | None = None,
        previous: str | None = None,
        previous_since: date | None = None,
    ) -> HouseholdMonth:
        enrolled = {
            src: since
            for src, since in (
                ("siao_insertion", hh.request_since),
                ("sne", hh.sne_since),
                ("syplo", hh.syplo_since),
                ("dalo", hh.dalo_since),
            )
            if since is not None
        }
        assert hh.situation_since is not None
        return HouseholdMonth(
            hh,
            month,
            situation,
            previous,
            day,
            entry,
            exit,
            tuple(hh.members),
            hh.situation_since,
            previous_since,
            enrolled,
        )

    def _close(self, hh: Household, status: str) -> None:
        hh.status, hh.situation = status, None
        hh.request_since = hh.sne_since = hh.syplo_since = hh.dalo_since = None

    def _entry(self, hh: Household, month: int, how: str, n_days: int) -> HouseholdMonth:
        if how == "returned_from_housing":
            hh.status, hh.housed_month, hh.housing_kind = "homeless", None, None
            hh.situation = weighted(self.rng, self.p.entry_situation)
        day = self.rng.randint(1, n_days)
        hh.situation_since = month_start(self.start, month) + timedelta(days=day - 1)
        assert hh.situation is not None
        return self._month_of(hh, month, hh.situation, day, entry=how)

    def _returns(self, hh: Household, month: int) -> bool:
        p = self.p
        since = month - (hh.housed_month or 0)
        rate = (
            p.return_rate_first_6_months
            if since <= 6
            else p.return_rate_months_7_to_24
            if since <= 24
            else p.return_rate_after_24_months
        )
        return self.rng.random() < rate

    def _homeless_month(
        self, hh: Household, month: int, first: date, n_days: int
    ) -> list[HouseholdMonth]:
        rng, p = self.rng, self.p
        day = rng.randint(1, n_days)
        situation = hh.situation
        assert situation is not None
        self._enrol(hh, month)
        death = p.death_rate_street if situation == "RUE" else p.death_rate
        leave = p.leave_territory_rate.get(situation, p.leave_territory_default)
        housing = min(0.9, p.housing_rate[situation] * hh.frailty)
        u = rng.random()
        if u < death + leave:
            hm = self._month_of(hh, month, situation, day, exit="deceased" if u < death else "left")
            self._close(hh, "deceased" if u < death else "left")
            return [hm]
        if u < death + leave + housing:
            kind = weighted(rng, p.housing_kind_mix)
            if situation == "RUE" and rng.random() < 0.5:
                kind = "housing_first"  # Un chez-soi d'abord takes people from the street
            if kind == "social" and hh.syplo_since is None and rng.random() < 0.3:
                hh.syplo_since = month  # labelled and housed on the prefectoral quota
            assert kind in HOUSING_KINDS
            hm = self._month_of(hh, month, situation, day, exit=f"housing:{kind}")
            self._close(hh, "housed")
            hh.housed_month, hh.housing_kind = month, kind
            return [hm]
        previous = previous_since = None
        if rng.random() < p.move_rate[situation]:
            previous, previous_since = situation, hh.situation_since
            hh.situation = weighted(rng, p.move_to[situation])
            hh.situation_since = first + timedelta(days=day - 1)
        assert hh.situation is not None
        out = [
            self._month_of(
                hh,
                month,
                hh.situation,
                day if previous else 1,
                previous=previous,
                previous_since=previous_since,
            )
        ]
        self._composition_change(hh, month, first, out)
        return out

    def _enrol(self, hh: Household, month: int) -> None:
        """Opens partner files: SI-SIAO request, SNE demand, SYPLO label, DALO recourse."""
        rng, p = self.rng, self.p
        s = hh.situation
        if (
            hh.request_since is None
            and s not in ("RUE", "SQUAT")
            and rng.random() < p.request_open_rate
        ):
            hh.request_since = month
        if hh.request_since is not None and month - hh.request_since > 12:
            hh.request_since = None  # closed without an answer, may be renewed
        if (
            hh.sne_since is None
            and hh.composition != "mineur_isole"
            and rng.random() < p.sne_monthly_rate
        ):
            hh.sne_since = month
        if (
            hh.syplo_since is None
            and s in ("HEB_INSERTION", "HOTEL", "LOG_TEMP")
            and rng.random() < p.syplo_label_rate
        ):
            hh.syplo_since = month
        if (
            hh.dalo_since is None
            and hh.sne_since is not None
            and month - hh.sne_since > 6
            and rng.random() < p.dalo_recourse_rate
        ):
            hh.dalo_since = month

    def _composition_change(
        self, hh: Household, month: int, first: date, out: list[HouseholdMonth]
    ) -> None:
        rng, p = self.rng, self.p
        if (
            hh.composition
            in ("femme_seule", "couple_sans_enfant", "famille_monoparentale", "couple_avec_enfants")
            and rng.random() < p.birth_rate
        ):
            mother = next(
                (
                    self.persons[i]
                    for i in hh.members
                    if self.persons[i].identity.sex == "F"
                    and 18 <= (first - self.persons[i].identity.birth_date).days / 365.25 <= 45
                ),
                None,
            )
            if mother is not None:
                father = self.persons[hh.members[0]]
                child = self._new_person(
                    father.origin, rng.choice("MF"), first, father.identity.birth_last_name
                )
                hh.members.append(child.id)
                hh.composition = {
                    "femme_seule": "famille_monoparentale",
                    "couple_sans_enfant": "couple_avec_enfants",
                }.get(hh.composition, hh.composition)
        elif hh.composition in COUPLES and rng.random() < p.separation_rate:
            man_id = hh.members[0]
            hh.members.remove(man_id)
            out[0].members = tuple(hh.members)  # this month he is listed in his new household only
            hh.composition = "famille_monoparentale" if len(hh.members) > 1 else "femme_seule"
            new = self._new_household(month, p.entry_situation, "homme_seul", [man_id])
            day = rng.randint(1, 28)
            new.situation_since = first + timedelta(days=day - 1)
            assert new.situation is not None
            out.append(self._month_of(new, month, new.situation, day, entry="separation"))
