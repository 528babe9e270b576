"""French labels for every code a published output shows: indicators and their units, dimension
families and their modalities. One place: the public tables, the reports, the partner feedback
and the analysts' code tables all read them here.

A dimension in `marts.indicators` reads `family=code` (`situation=RUE`); the total has none.
An unknown code is an error, never a blank label: add it here.
"""

from __future__ import annotations

import polars as pl

from synchro_dagster.indicators.definitions import INDICATORS
from synchro_dagster.sources import all_sources
from synchro_dagster.sources.spec import COMPOSITIONS, SITUATIONS

TOTAL_LABEL = "Ensemble"  # libellé of a total (no dimension)

# indicator -> (short label, unit)
_INDICATORS: dict[str, tuple[str, str]] = {
    "stock_households": ("Ménages sans logement en fin de mois", "ménages"),
    "stock_persons": ("Personnes sans logement en fin de mois", "personnes"),
    "inflow_households": ("Ménages entrés dans le sans-logement", "ménages"),
    "outflow_households": ("Ménages sortis du sans-logement", "ménages"),
    "returns_from_housing": ("Ménages revenus au sans-logement après un logement", "ménages"),
    "median_months_since_first_seen": ("Ancienneté médiane depuis le premier repérage", "mois"),
    "mean_months_to_housing": ("Durée moyenne entre le premier repérage et le logement", "mois"),
    "median_months_to_housing": ("Durée médiane entre le premier repérage et le logement", "mois"),
    "households_with_open_request": ("Ménages ayant une demande en cours", "ménages"),
    "requests_answered": ("Ménages dont la demande a reçu une réponse", "ménages"),
    "answers_received": ("Ménages ayant reçu une réponse", "ménages"),
    "urgence_requests_not_fulfilled": ("Demandes au 115 non pourvues", "demandes"),
    "households_urgence_not_fulfilled": ("Ménages ayant une demande au 115 non pourvue", "ménages"),
    "priority_not_housed": ("Ménages prioritaires non encore logés", "ménages"),
    "median_months_waiting_priority": ("Attente médiane des ménages prioritaires", "mois"),
    "households_seen_by_source": ("Ménages repérés par la source", "ménages"),
    "households_seen_only_by_source": ("Ménages repérés par cette seule source", "ménages"),
}

FAMILIES: dict[str, str] = {
    "situation": "Situation",
    "ethos": "Catégorie ETHOS Light",
    "composition": "Composition du ménage",
    "type": "Type d'entrée ou de sortie",
    "within": "Délai depuis la sortie vers un logement",
    "need": "Type de demande",
    "answer": "Type de réponse",
    "source": "Source",
    # codes of the household-level tables analysts read (core.household_months / _events)
    "status": "Statut du ménage en fin de mois",
    "flow": "Sens du flux",
    "housing_kind": "Type de logement",
}

_SITUATIONS = {
    "RUE": "Rue, abri de fortune, véhicule, campement",
    "MISE_ABRI": "Mise à l'abri, hébergement d'urgence",
    "HOTEL": "Hôtel (115, État)",
    "HEB_INSERTION": "Hébergement d'insertion (CHRS, stabilisation, centre maternel)",
    "ASILE": "Hébergement des demandeurs d'asile (CADA, HUDA)",
    "LOG_TEMP": "Logement temporaire (intermédiation locative, résidence temporaire)",
    "INSTITUTION": "Sortie d'institution sans logement (hôpital, prison, protection de l'enfance)",
    "SQUAT": "Squat, bidonville, caravane contrainte",
    "TIERS": "Hébergé chez un tiers faute de logement",
    "LOGE": "Logé (logement ordinaire ou adapté pérenne)",
    "INCONNU": "Situation inconnue",
}

_HOUSING_KINDS = {
    "social": "logement social",
    "private": "logement privé",
    "adapted": "logement adapté (pension de famille, résidence sociale)",
    "housing_first": "logement d'abord (Un chez-soi d'abord)",
    "unknown": "logement de type non précisé",
}

_MODALITIES: dict[str, dict[str, str]] = {
    "situation": _SITUATIONS,
    "ethos": {  # ETHOS Light (FEANTSA), as observation/household_months.sql assigns it
        "1": "1 - Personnes vivant dans la rue ou dans des espaces publics",
        "2": "2 - Personnes en hébergement d'urgence",
        "3": "3 - Personnes en hébergement pour personnes sans domicile",
        "3 (asile)": "3 - Personnes en hébergement pour demandeurs d'asile",
        "4": "4 - Personnes sortant d'institution sans logement",
        "5": "5 - Personnes vivant dans un logement non conventionnel",
        "6": "6 - Personnes hébergées chez de la famille ou des amis faute de logement",
    },
    "composition": {
        "homme_seul": "Homme seul",
        "femme_seule": "Femme seule",
        "couple_sans_enfant": "Couple sans enfant",
        "famille_monoparentale": "Famille monoparentale",
        "couple_avec_enfants": "Couple avec enfant(s)",
        "groupe_adultes": "Groupe d'adultes",
        "mineur_isole": "Mineur isolé",
        "inconnue": "Composition inconnue",
    },
    "type": {
        "newly_identified": "Nouvellement repéré",
        "returned_from_housing": "Retour après une sortie vers un logement",
        "returned_from_inactivity": "Retour après une période sans nouvelles",
        **{f"to_housing:{k}": f"Sortie vers un {v}" for k, v in _HOUSING_KINDS.items()},
        "deceased": "Décès",
        "left_territory": "Départ du territoire",
        "to_inactivity": "Sans nouvelles (inactivité)",
        "duplicate_merged": "Doublon fusionné (deux ménages reconnus comme un seul)",
    },
    "within": {
        "6": "Dans les 6 mois",
        "12": "Dans les 12 mois",
        "24": "Dans les 24 mois",
    },
    "need": {
        "insertion": "Demande d'insertion au SIAO",
        "urgence": "Demande d'hébergement d'urgence au 115",
        "syplo": "Ménage labellisé prioritaire (SYPLO)",
        "sne": "Demande de logement social active (SNE)",
        "dalo": "Recours DALO reconnu prioritaire et urgent",
    },
    "answer": {
        "shelter": "Mise à l'abri (115 pourvu, hébergement d'urgence, hôtel)",
        "insertion_accommodation": "Hébergement d'insertion (CHRS, stabilisation, CADA, HUDA)",
        "adapted_housing": "Logement adapté (IML, pension de famille, résidence sociale, "
        "Un chez-soi d'abord)",
        "housing_allocation": "Attribution d'un logement (social ou privé)",
    },
    "status": {
        "active": "Sans logement",
        "housed": "Logé",
        "inactive": "Sans nouvelles",
        "deceased": "Décédé",
        "left_territory": "Parti du territoire",
    },
    "flow": {"inflow": "Entrée", "outflow": "Sortie"},
    "housing_kind": {k: v[0].upper() + v[1:] for k, v in _HOUSING_KINDS.items()},
}


class UnknownCodeError(ValueError):
    """A code with no French label: add it to synchro_dagster/publish/labels.py."""


def _sources() -> dict[str, str]:
    return {s.id: s.label for s in all_sources().values()}


def _modalities(family: str) -> dict[str, str]:
    if family == "source":
        return _sources()
    if family not in _MODALITIES:
        raise UnknownCodeError(
            f"no French label for the dimension family {family!r}: add it to FAMILIES and its "
            "codes to synchro_dagster/publish/labels.py"
        )
    return _MODALITIES[family]


def indicator_label(name: str) -> str:
    return _indicator(name)[0]


def indicator_unit(name: str) -> str:
    return _indicator(name)[1]


def _indicator(name: str) -> tuple[str, str]:
    try:
        return _INDICATORS[name]
    except KeyError:
        raise UnknownCodeError(
            f"no French label for the indicator {name!r}: add it to synchro_dagster/publish/"
            "labels.py beside its definition in indicators/definitions.py"
        ) from None


def family_label(family: str) -> str:
    _modalities(family)
    return FAMILIES[family]


def modality_label(family: str, value: str) -> str:
    labels = _modalities(family)
    try:
        return labels[value]
    except KeyError:
        raise UnknownCodeError(
            f"no French label for {family}={value!r}: add it to synchro_dagster/publish/labels.py"
        ) from None


def split_dimension(dimension: str | None) -> tuple[str | None, str | None]:
    """`'situation=RUE'` -> `('situation', 'RUE')`; the total (None) -> `(None, None)`."""
    if dimension is None:
        return None, None
    family, sep, value = dimension.partition("=")
    if not sep:
        raise UnknownCodeError(f"dimension {dimension!r} is not of the form family=code")
    return family, value


def dimension_label(dimension: str | None) -> str:
    """The label of a `marts.indicators` dimension; the total's is TOTAL_LABEL."""
    family, value = split_dimension(dimension)
    return TOTAL_LABEL if family is None else modality_label(family, value)


def code_tables() -> pl.DataFrame:
    """Every code and its label: (family, code, libelle). Family `indicator` lists the
    indicators, `dimension` the families themselves, then one family per dimension."""
    rows = [("indicator", i.name, indicator_label(i.name)) for i in INDICATORS]
    rows += [("dimension", f, label) for f, label in FAMILIES.items()]
    rows += [(f, code, label) for f in FAMILIES for code, label in _modalities(f).items()]
    return pl.DataFrame(rows, schema=["family", "code", "libelle"], orient="row")


def _check_complete() -> None:
    """Every indicator, dimension family, situation and composition the code knows has a label
    (checked at import: a new code without one fails every test at once)."""
    missing = [i.name for i in INDICATORS if i.name not in _INDICATORS]
    missing += [s for s in SITUATIONS if s not in _SITUATIONS]
    missing += [c for c in COMPOSITIONS if c not in _MODALITIES["composition"]]
    missing += [f for i in INDICATORS for f in i.dimensions if f not in FAMILIES]
    if missing:
        raise UnknownCodeError(f"codes without a French label: {missing}")


_check_complete()
