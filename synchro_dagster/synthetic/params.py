"""The one parameter object behind the simulated territory.

Defaults describe a metropole the size of Dijon: about 2,000 households without a
home at the start, a monthly inflow of about 5.5 % of that stock, exits to
housing that depend on the situation, returns from housing, disappearance and
rare deaths. Rates are monthly unless said otherwise. Every rate is documented
here once; the simulator reads nothing else.

`profile(name)` gives a named set of parameters: `default` (the territory the
identity model was built on), `hard` (concentrated names, more undated and
more damaged records: a territory the model was not tuned on) or `hard-refs`
(hard, with street teams and day centres noting their own reference).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

HOUSING_KINDS: tuple[str, ...] = ("social", "private", "adapted", "housing_first")


@dataclass(frozen=True)
class NoiseRates:
    """Per-record identity noise, as typed by hand in partner tools.

    A rate is the probability that one record shows the defect. Sources that
    type everything in upper case or drop accents do so through their own
    profile (`SourceProfile`), on top of these rates.
    """

    typo_first_name: float = 0.03
    typo_last_name: float = 0.03
    double_typo: float = 0.0  # share of mistyped names that get a second typo
    first_last_swapped: float = 0.02
    compound_first_shortened: float = 0.35  # share of compound first names cut to one part
    usage_name_shown: float = 0.6  # married women: usage name instead of birth name
    missing_birth_date: float = 0.03
    day_month_swapped: float = 0.015  # a day past 12 cannot be swapped: typed a year off instead
    year_off_by_one: float = 0.01
    placeholder_birth_date: float = 0.015  # 01/01/YYYY typed when only the year is known


@dataclass(frozen=True)
class NamePool:
    """Who the persons are: their origins and how concentrated their names are.

    Names are drawn from the lists in `names.py`, by rank: the share of a name
    falls as 1 / rank ** zipf_exponent within its origin's list.
    """

    origins: dict[str, float] = field(
        default_factory=lambda: {
            "france": 0.55,
            "maghreb": 0.18,
            "afrique_ouest": 0.12,
            "europe_est": 0.10,
            "autre": 0.05,
        }
    )
    rare_last_name_share: float = 0.6  # surnames built from syllables: France has a million
    zipf_exponent: float = 0.6  # the commonest name of an origin is a few per cent, not a tenth
    # names put at the head of an origin's ranking ("_" for a space, as in names.py)
    leading_last_names: dict[str, tuple[str, ...]] = field(default_factory=dict)
    leading_first_names: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    usage_name_share: float = 0.7  # women in a couple who carry their husband's name
    single_mother_usage_share: float = 0.0  # mothers alone who carry their children's name


@dataclass(frozen=True)
class SourceProfile:
    """How one partner types identities and how often it sees a situation."""

    visibility: dict[str, float]
    upper_case: float = 0.0
    accents_lost: float = 0.0
    age_instead_of_birth_date: float = 0.0
    extra_missing_birth_date: float = 0.0


def _profiles() -> dict[str, SourceProfile]:
    return {
        # SI-SIAO: an open insertion request is listed every month (see request_open_rate)
        "siao_insertion": SourceProfile(visibility={}, upper_case=0.5),
        "siao_urgence": SourceProfile(
            visibility={
                "RUE": 0.5,
                "SQUAT": 0.3,
                "MISE_ABRI": 0.85,
                "HOTEL": 0.6,
                "TIERS": 0.15,
                "INSTITUTION": 0.05,
                "ASILE": 0.05,
            },
            upper_case=0.8,
        ),
        "maraudes": SourceProfile(
            visibility={"RUE": 0.55, "SQUAT": 0.45, "MISE_ABRI": 0.05, "TIERS": 0.02},
            upper_case=0.3,
            accents_lost=0.7,
            age_instead_of_birth_date=0.5,
            extra_missing_birth_date=0.1,
        ),
        "accueils_jour": SourceProfile(
            visibility={
                "RUE": 0.35,
                "SQUAT": 0.3,
                "TIERS": 0.2,
                "MISE_ABRI": 0.25,
                "HOTEL": 0.1,
                "ASILE": 0.05,
                "INSTITUTION": 0.02,
            },
            accents_lost=0.5,
            extra_missing_birth_date=0.05,
        ),
        "hebergement": SourceProfile(
            visibility={"MISE_ABRI": 0.9, "HOTEL": 0.97, "HEB_INSERTION": 0.98, "ASILE": 0.95},
            accents_lost=0.3,
        ),
        "logement_accompagne": SourceProfile(visibility={"LOG_TEMP": 0.95}, accents_lost=0.2),
        "syplo": SourceProfile(visibility={}, upper_case=1.0, accents_lost=1.0),
        "sne": SourceProfile(visibility={}, upper_case=1.0, accents_lost=1.0),
        "dalo": SourceProfile(visibility={}, accents_lost=0.2),
    }


@dataclass(frozen=True)
class HiddenPart:
    """Why partners miss some households in a month, and why their lists overlap as they do.

    What a multiple-systems estimate (docs/estimation.md) must survive. Three mechanisms:
    - Situation: a source sees a household with the visibility of its situation (the
      `SourceProfile`s): shelters and hotels are listed by their providers almost always, the
      street and people hosted by friends only when they meet a street service.
    - Contact: each household has its own propensity to meet street services (the 115, street
      outreach, day centres), gamma-distributed with mean 1 and this shape; the source's
      visibility v becomes 1 - (1 - v) ** contact. Lower shape: more unequal, more hidden.
    - Dependence: the 115 books the shelter or the hotel, so for a household in MISE_ABRI or
      HOTEL the 115's listing and the provider's come from one draw in `shelter_dependence`
      of household-months (each its own draw otherwise); the SI-SIAO insertion request and the
      insertion provider's occupancy list likewise (`insertion_dependence`).
    With the defaults about 6 % of the households without a home are seen by no partner in a
    month: a quarter of those hosted by third parties, a third of institution exits, an eighth
    on the street (bench/hidden.py). A shape or a dependence of 0 turns the mechanism off
    without a draw: the territory is then the one of the same seed without it.
    """

    contact_shape: float = 3.0
    contact_sources: tuple[str, ...] = ("siao_urgence", "maraudes", "accueils_jour")
    shelter_dependence: float = 0.8
    insertion_dependence: float = 0.8


@dataclass(frozen=True)
class TerritoryParams:
    """Everything the simulated territory depends on (defaults: a Dijon-sized metropole)."""

    households: int = 2000  # households without a home at the start
    inflow_rate: float = 0.055  # new households per month, as a share of `households`
    composition_mix: dict[str, float] = field(
        default_factory=lambda: {
            "homme_seul": 0.42,
            "femme_seule": 0.13,
            "famille_monoparentale": 0.18,
            "couple_avec_enfants": 0.11,
            "couple_sans_enfant": 0.07,
            "groupe_adultes": 0.04,
            "mineur_isole": 0.05,
        }
    )
    initial_situation: dict[str, float] = field(
        default_factory=lambda: {
            "RUE": 0.14,
            "MISE_ABRI": 0.18,
            "HOTEL": 0.12,
            "HEB_INSERTION": 0.22,
            "ASILE": 0.08,
            "LOG_TEMP": 0.08,
            "INSTITUTION": 0.03,
            "SQUAT": 0.05,
            "TIERS": 0.10,
        }
    )
    entry_situation: dict[str, float] = field(
        default_factory=lambda: {
            "RUE": 0.25,
            "TIERS": 0.20,
            "MISE_ABRI": 0.20,
            "HOTEL": 0.10,
            "INSTITUTION": 0.07,
            "SQUAT": 0.08,
            "ASILE": 0.10,
        }
    )
    # families are sheltered (hotel, insertion, asylum) more than they sleep rough
    family_situation_weight: dict[str, float] = field(
        default_factory=lambda: {
            "RUE": 0.3,
            "SQUAT": 0.7,
            "HOTEL": 3.0,
            "HEB_INSERTION": 1.5,
            "ASILE": 1.8,
        }
    )
    move_rate: dict[str, float] = field(
        default_factory=lambda: {
            "RUE": 0.25,
            "MISE_ABRI": 0.20,
            "HOTEL": 0.12,
            "HEB_INSERTION": 0.06,
            "ASILE": 0.06,
            "LOG_TEMP": 0.03,
            "INSTITUTION": 0.30,
            "SQUAT": 0.15,
            "TIERS": 0.20,
        }
    )
    move_to: dict[str, dict[str, float]] = field(
        default_factory=lambda: {
            "RUE": {
                "MISE_ABRI": 0.45,
                "SQUAT": 0.15,
                "TIERS": 0.15,
                "HOTEL": 0.10,
                "INSTITUTION": 0.05,
                "HEB_INSERTION": 0.10,
            },
            "MISE_ABRI": {
                "HEB_INSERTION": 0.45,
                "RUE": 0.25,
                "HOTEL": 0.10,
                "LOG_TEMP": 0.10,
                "TIERS": 0.10,
            },
            "HOTEL": {"HEB_INSERTION": 0.5, "LOG_TEMP": 0.3, "MISE_ABRI": 0.1, "RUE": 0.1},
            "HEB_INSERTION": {"LOG_TEMP": 0.6, "MISE_ABRI": 0.2, "RUE": 0.2},
            "ASILE": {"HEB_INSERTION": 0.3, "MISE_ABRI": 0.3, "RUE": 0.2, "HOTEL": 0.2},
            "LOG_TEMP": {"HEB_INSERTION": 0.5, "MISE_ABRI": 0.5},
            "INSTITUTION": {"RUE": 0.3, "MISE_ABRI": 0.4, "HEB_INSERTION": 0.2, "TIERS": 0.1},
            "SQUAT": {"RUE": 0.4, "MISE_ABRI": 0.4, "TIERS": 0.2},
            "TIERS": {"RUE": 0.3, "MISE_ABRI": 0.3, "HEB_INSERTION": 0.2, "SQUAT": 0.2},
        }
    )
    # exit to housing, before the household's own frailty factor (long-tailed durations)
    housing_rate: dict[str, float] = field(
        default_factory=lambda: {
            "RUE": 0.01,
            "MISE_ABRI": 0.02,
            "HOTEL": 0.03,
            "HEB_INSERTION": 0.06,
            "ASILE": 0.02,
            "LOG_TEMP": 0.10,
            "INSTITUTION": 0.01,
            "SQUAT": 0.01,
            "TIERS": 0.03,
        }
    )
    housing_kind_mix: dict[str, float] = field(
        default_factory=lambda: {
            "social": 0.45,
            "private": 0.15,
            "adapted": 0.25,
            "housing_first": 0.15,
        }
    )
    frailty_shape: float = 1.2  # gamma shape of the per-household exit speed (mean 1)
    leave_territory_rate: dict[str, float] = field(
        default_factory=lambda: {
            "RUE": 0.03,
            "SQUAT": 0.03,
            "TIERS": 0.03,
            "ASILE": 0.02,
        }
    )
    leave_territory_default: float = 0.01
    death_rate: float = 0.001
    death_rate_street: float = 0.003
    return_rate_first_6_months: float = 0.02
    return_rate_months_7_to_24: float = 0.01
    return_rate_after_24_months: float = 0.003
    birth_rate: float = 0.002  # a child is born in a household with a woman aged 18-45
    separation_rate: float = 0.002  # a couple splits; the spouse becomes a new household
    # partner enrolment
    request_open_rate: float = 0.15  # SI-SIAO insertion request opened, per month, when sheltered
    request_visibility: float = 0.95
    initial_request_share: float = 0.5  # households sheltered at the start with a request open
    sne_initial_share: float = 0.35
    sne_monthly_rate: float = 0.03
    syplo_label_rate: float = 0.03  # for households in insertion, hotel or temporary housing
    dalo_recourse_rate: float = 0.01  # SNE applicants waiting for more than 6 months
    listed_visibility: float = 0.97  # SYPLO / SNE monthly extracts of open files
    # rows deliberately unusable: no name, impossible date, unknown code
    defect_rate: float = 0.005
    # households whose street-team and day-centre rows carry the service's own reference for
    # them (a SI-SIAO number a street team notes, a day centre's member card): 0, as most of
    # these services keep none today; above 0, those files gain the column
    street_references: float = 0.0
    names: NamePool = field(default_factory=NamePool)
    noise: NoiseRates = field(default_factory=NoiseRates)
    profiles: dict[str, SourceProfile] = field(default_factory=_profiles)
    hidden: HiddenPart = field(default_factory=HiddenPart)


def _hard() -> TerritoryParams:
    """A big city's SIAO, as the identity model never saw it.

    Names concentrate (the 50 commonest surnames carry over 40 % of persons),
    with native spellings (Ł, Đ, Ø, ễ) that only a transliteration reads, and
    records are more damaged: undated, mistyped twice, swapped. Its hidden part is larger and
    less even: contact with street services more unequal (exponential: gamma shape 1), and the 115,
    shelters and SI-SIAO listing the same households more often (0.9).
    """
    base = TerritoryParams()
    names = NamePool(
        # the street and the 115 see more persons born in Africa than the city does
        origins={
            "france": 0.34,
            "maghreb": 0.26,
            "afrique_ouest": 0.26,
            "europe_est": 0.08,
            "autre": 0.06,
        },
        rare_last_name_share=0.25,  # families from a few regions share a few surnames
        zipf_exponent=1.0,  # the commonest name of an origin is a fifth of its listed names
        # the names that concentrate in SIAO files lead; TRAORE, SAIDI, NGUYEN are the same names
        # as registered without accents; Đ Ł ễ are beyond cp1252 and Ø has no decomposition
        leading_last_names={
            "maghreb": ("BEN_ALI", "BENALI", "EL_AMRANI", "HADDAD", "SAÏDI", "MANSOURI", "SAIDI"),
            "afrique_ouest": (
                "DIALLO",
                "TRAORÉ",
                "CAMARA",
                "KONATÉ",
                "SYLLA",
                "DIARRA",
                "BAH",
                "BARRY",
                "KEITA",
                "COULIBALY",
                "TRAORE",
            ),
            "europe_est": ("POPESCU", "NOWAK", "KOWALSKI", "ĐORĐEVIĆ", "WAŁĘSA"),
            "autre": ("NGUYEN", "ÇELIK", "YILMAZ", "NGUYỄN", "ØDEGÅRD"),
        },
        leading_first_names={
            "afrique_ouest": {"F": ("Fatoumata", "Aminata", "Aïssata")},
            "europe_est": {"M": ("Ion", "Gheorghe", "Łukasz"), "F": ("Maria", "Małgorzata")},
            "autre": {"M": ("Ahmad", "Mohammad", "Bjørn"), "F": ("Fatemeh", "Zahra", "Ngọc")},
        },
        usage_name_share=0.9,  # more married women, each known under two names
        single_mother_usage_share=0.6,  # separated, they kept their former husband's name
    )
    noise = replace(
        base.noise,
        typo_first_name=0.06,  # twice the default: records typed in a hurry at night (115)
        typo_last_name=0.06,
        double_typo=0.3,  # about 3.5 % of records show a name two typos away
        first_last_swapped=0.06,  # names neither French nor familiar to the person typing
        usage_name_shown=0.5,  # half the records of a married woman under each name
        missing_birth_date=0.15,  # on top of the sources' own extra undated records
        day_month_swapped=0.08,  # 2.5 % of records swapped; 5 % in all typed a year off
    )
    hidden = replace(
        base.hidden, contact_shape=1.0, shelter_dependence=0.9, insertion_dependence=0.9
    )
    return replace(base, names=names, noise=noise, hidden=hidden)


def _hard_refs() -> TerritoryParams:
    """`hard`, its street teams and day centres noting their own reference for 7 households in
    10: what asking them to would bring. Every other file and every name is hard's."""
    return replace(_hard(), street_references=0.7)


_PROFILES: dict[str, Callable[[], TerritoryParams]] = {
    "default": TerritoryParams,
    "hard": _hard,
    "hard-refs": _hard_refs,
}
PROFILE_NAMES: tuple[str, ...] = tuple(_PROFILES)


def profile(name: str) -> TerritoryParams:
    """The parameters of a named simulator profile: `default`, `hard` or `hard-refs`."""
    if name not in _PROFILES:
        raise ValueError(
            f"unknown simulator profile '{name}': choose one of {', '.join(PROFILE_NAMES)}"
        )
    return _PROFILES[name]()
