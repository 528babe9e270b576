"""What each monthly indicator means: written once, read by analysts in the warehouse
(`marts.indicator_definitions`), in the snapshot and on docs/indicators.md (generated from
this text by `synchro docs`)."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class Indicator:
    name: str
    unit: str
    definition: str
    definition_fr: str  # the same in French, for the published reports and tables
    dimensions: tuple[str, ...] = ()  # "situation" -> rows with dimension "situation=RUE"…
    additive: bool = False  # the parts of each dimension add up to the total (a checked rule)


INDICATORS: tuple[Indicator, ...] = (
    Indicator(
        "stock_households",
        "households",
        "Households without a home at the end of the month: at least one record dated in the "
        "last N days (inactivity window, default 90) places them in a homelessness situation, "
        "and no source reported a housing exit, a death or a departure after it.",
        "Ménages sans logement en fin de mois : au moins un enregistrement daté des N "
        "derniers jours (fenêtre d'inactivité, 90 par défaut) les place dans une situation de "
        "sans-logement, et aucune source n'a signalé depuis une sortie vers un logement, un "
        "décès ou un départ du territoire.",
        ("situation", "ethos", "composition"),
        additive=True,
    ),
    Indicator(
        "stock_persons",
        "persons",
        "Persons in the households of stock_households: the household size a source declared "
        "last in the inactivity window, else the persons linked to the household.",
        "Personnes des ménages sans logement : la taille du ménage déclarée en dernier par "
        "une source dans la fenêtre d'inactivité, à défaut les personnes rattachées au "
        "ménage.",
        ("situation", "ethos", "composition"),
        additive=True,
    ),
    Indicator(
        "inflow_households",
        "households",
        "Households in the stock this month and not last month. type: newly_identified (no "
        "record in the look-back, default 24 months), returned_from_housing (their latest "
        "record before the month was an exit to housing), returned_from_inactivity (seen "
        "before, then out of sight). In the first month observed, the whole stock is an "
        "inflow.",
        "Ménages sans logement ce mois-ci qui ne l'étaient pas le mois précédent, par type : "
        "nouvellement repérés (aucun enregistrement sur la période de recul, 24 mois par "
        "défaut), retour après une sortie vers un logement (leur dernier enregistrement avant "
        "le mois était une sortie vers un logement), retour après une période sans nouvelles "
        "(déjà vus, puis perdus de vue). Le premier mois observé, tout le stock est compté en "
        "entrée.",
        ("type",),
        additive=True,
    ),
    Indicator(
        "outflow_households",
        "households",
        "Households in the stock last month and not this month. type: to_housing:<kind> "
        "(social, private, adapted, housing_first; unknown when the source did not say), "
        "deceased and left_territory (when a source says so), to_inactivity (no "
        "homelessness evidence in the inactivity window), duplicate_merged (identity found two "
        "of last month's households to be one). stock = last month's stock + inflow - outflow.",
        "Ménages sans logement le mois précédent qui ne le sont plus ce mois-ci, par type : "
        "sortie vers un logement (social, privé, adapté, Logement d'abord ; non précisé quand "
        "la source ne le dit pas), décès et départ du territoire (quand une source le "
        "signale), sans nouvelles (aucun enregistrement de sans-logement dans la fenêtre "
        "d'inactivité), doublon fusionné (l'identification a reconnu un seul ménage dans deux "
        "ménages du mois précédent). Stock du mois = stock du mois précédent + entrées − "
        "sorties.",
        ("type",),
        additive=True,
    ),
    Indicator(
        "returns_from_housing",
        "households",
        "Households back in the stock this month whose latest exit was to housing at most 6, "
        "12 or 24 months before (dimension within=6|12|24, each counting the shorter ones too; "
        "an exit is seen only within the look-back).",
        "Ménages revenus dans le stock ce mois-ci dont la dernière sortie vers un logement "
        "remonte à 6, 12 ou 24 mois au plus (chaque délai compte aussi les plus courts ; une "
        "sortie n'est connue que sur la période de recul).",
        ("within",),
    ),
    Indicator(
        "median_months_since_first_seen",
        "months",
        "Median, over the stock, of the months between the first month a source named the "
        "household and this month.",
        "Médiane, sur les ménages sans logement, du nombre de mois écoulés depuis le premier "
        "mois où une source a cité le ménage.",
    ),
    Indicator(
        "mean_months_to_housing",
        "months",
        "Mean, over the households that left to housing this month, of the months between "
        "their first month seen and this month.",
        "Moyenne, sur les ménages sortis vers un logement dans le mois, du nombre de mois "
        "écoulés depuis leur premier repérage.",
    ),
    Indicator(
        "median_months_to_housing",
        "months",
        "Median of the same durations as mean_months_to_housing.",
        "Médiane des mêmes durées que la durée moyenne d'accès au logement.",
    ),
    Indicator(
        "households_with_open_request",
        "households",
        "Households of the stock with a request open at the end of the month, by need: "
        "insertion (SI-SIAO request waiting or oriented), urgence (a 115 request this month), "
        "syplo (priority label), sne (active social-housing application), dalo (recourse "
        "recognised priority and urgent). A household can have several.",
        "Ménages sans logement ayant une demande en cours en fin de mois, par type de demande "
        ": insertion (demande SI-SIAO en attente ou orientée), urgence (une demande au 115 "
        "dans le mois), SYPLO (label prioritaire), SNE (demande de logement social active), "
        "DALO (recours reconnu prioritaire et urgent). Un ménage peut en avoir plusieurs.",
        ("need",),
    ),
    Indicator(
        "requests_answered",
        "households",
        "Households whose request of a given need got its answer this month (admission, a "
        "fulfilled 115 request, an allocation or rehousing reported by that source).",
        "Ménages dont une demande d'un type donné a reçu sa réponse dans le mois (admission, "
        "demande au 115 pourvue, attribution ou relogement signalés par la source).",
        ("need",),
    ),
    Indicator(
        "answers_received",
        "households",
        "Households that received an answer this month, by kind: shelter (115 fulfilled, entry "
        "to an emergency shelter or hotel), insertion_accommodation (entry to CHRS, "
        "stabilisation, asylum accommodation), adapted_housing (IML, pension de famille, "
        "résidence sociale, Housing First), housing_allocation (social or private let).",
        "Ménages ayant reçu une réponse dans le mois, par type : mise à l'abri (115 pourvu, "
        "entrée en hébergement d'urgence ou à l'hôtel), hébergement d'insertion (entrée en "
        "CHRS, stabilisation, hébergement pour demandeurs d'asile), logement adapté "
        "(intermédiation locative, pension de famille, résidence sociale, Un chez-soi "
        "d'abord), attribution d'un logement (social ou privé).",
        ("answer",),
    ),
    Indicator(
        "urgence_requests_not_fulfilled",
        "requests",
        "115 requests of the month that got no place (one request for a whole household).",
        "Demandes au 115 du mois restées sans place (une demande pour tout un ménage).",
    ),
    Indicator(
        "households_urgence_not_fulfilled",
        "households",
        "Households with at least one 115 request not fulfilled this month.",
        "Ménages ayant eu au moins une demande au 115 non pourvue dans le mois.",
    ),
    Indicator(
        "priority_not_housed",
        "households",
        "Households of the stock labelled priority (SYPLO label or DALO recourse recognised) "
        "and not housed at the end of the month.",
        "Ménages sans logement reconnus prioritaires (label SYPLO ou recours DALO reconnu) et "
        "non encore logés en fin de mois.",
    ),
    Indicator(
        "median_months_waiting_priority",
        "months",
        "Median, over priority_not_housed, of the months since the earliest label or recourse.",
        "Médiane, sur les ménages prioritaires non encore logés, du nombre de mois écoulés "
        "depuis le premier label ou recours.",
    ),
    Indicator(
        "households_seen_by_source",
        "households",
        "Households of the stock that a source named this month (a household seen by several "
        "sources counts for each).",
        "Ménages sans logement qu'une source a cités dans le mois (un ménage vu par plusieurs "
        "sources compte pour chacune).",
        ("source",),
    ),
    Indicator(
        "households_seen_only_by_source",
        "households",
        "Households of the stock that only this source named this month: what the territory "
        "would miss without it.",
        "Ménages sans logement que cette seule source a cités dans le mois : ce que le "
        "territoire ne verrait pas sans elle.",
        ("source",),
    ),
)


def definitions_frame() -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "indicator": i.name,
                "unit": i.unit,
                "definition": i.definition,
                "definition_fr": i.definition_fr,
                "dimensions": list(i.dimensions),
                "additive": i.additive,
            }
            for i in INDICATORS
        ],
        schema={
            "indicator": pl.String,
            "unit": pl.String,
            "definition": pl.String,
            "definition_fr": pl.String,
            "dimensions": pl.List(pl.String),
            "additive": pl.Boolean,
        },
    )


def markdown() -> str:
    """docs/indicators.md."""
    lines = [
        "# Monthly indicators",
        "",
        "Generated by `synchro docs` from `synchro_dagster/indicators/definitions.py`; the same",
        "text is in the table `marts.indicator_definitions`. Table `marts.indicators` holds one",
        "row per month, indicator and dimension (`dimension` is null for the total, otherwise",
        "`name=value`, e.g. `situation=RUE`).",
        "",
    ]
    for i in INDICATORS:
        lines += [
            f"## `{i.name}` ({i.unit})",
            "",
            i.definition,
            "",
            f"*En français :* {i.definition_fr}",
            "",
        ]
        if i.dimensions:
            dims = ", ".join(f"`{d}`" for d in i.dimensions)
            rule = " The parts of each dimension add up to the total." if i.additive else ""
            lines += [f"Dimensions: {dims}.{rule}", ""]
    return "\n".join(lines)
