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
    dimensions: tuple[str, ...] = ()  # "situation" -> rows with dimension "situation=RUE"…
    additive: bool = False  # the parts of each dimension add up to the total (a checked rule)


INDICATORS: tuple[Indicator, ...] = (
    Indicator(
        "stock_households",
        "households",
        "Households without a home at the end of the month: at least one record dated in the "
        "last N days (inactivity window, default 90) places them in a homelessness situation, "
        "and no source reported a housing exit, a death or a departure after it.",
        ("situation", "ethos", "composition"),
        additive=True,
    ),
    Indicator(
        "stock_persons",
        "persons",
        "Persons in the households of stock_households: the household size a source declared "
        "last in the inactivity window, else the persons linked to the household.",
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
        ("type",),
        additive=True,
    ),
    Indicator(
        "returns_from_housing",
        "households",
        "Households back in the stock this month whose latest exit was to housing at most 6, "
        "12 or 24 months before (dimension within=6|12|24, each counting the shorter ones too; "
        "an exit is seen only within the look-back).",
        ("within",),
    ),
    Indicator(
        "median_months_since_first_seen",
        "months",
        "Median, over the stock, of the months between the first month a source named the "
        "household and this month.",
    ),
    Indicator(
        "mean_months_to_housing",
        "months",
        "Mean, over the households that left to housing this month, of the months between "
        "their first month seen and this month.",
    ),
    Indicator(
        "median_months_to_housing",
        "months",
        "Median of the same durations as mean_months_to_housing.",
    ),
    Indicator(
        "households_with_open_request",
        "households",
        "Households of the stock with a request open at the end of the month, by need: "
        "insertion (SI-SIAO request waiting or oriented), urgence (a 115 request this month), "
        "syplo (priority label), sne (active social-housing application), dalo (recourse "
        "recognised priority and urgent). A household can have several.",
        ("need",),
    ),
    Indicator(
        "requests_answered",
        "households",
        "Households whose request of a given need got its answer this month (admission, a "
        "fulfilled 115 request, an allocation or rehousing reported by that source).",
        ("need",),
    ),
    Indicator(
        "answers_received",
        "households",
        "Households that received an answer this month, by kind: shelter (115 fulfilled, entry "
        "to an emergency shelter or hotel), insertion_accommodation (entry to CHRS, "
        "stabilisation, asylum accommodation), adapted_housing (IML, pension de famille, "
        "résidence sociale, Housing First), housing_allocation (social or private let).",
        ("answer",),
    ),
    Indicator(
        "urgence_requests_not_fulfilled",
        "requests",
        "115 requests of the month that got no place (one request for a whole household).",
    ),
    Indicator(
        "households_urgence_not_fulfilled",
        "households",
        "Households with at least one 115 request not fulfilled this month.",
    ),
    Indicator(
        "priority_not_housed",
        "households",
        "Households of the stock labelled priority (SYPLO label or DALO recourse recognised) "
        "and not housed at the end of the month.",
    ),
    Indicator(
        "median_months_waiting_priority",
        "months",
        "Median, over priority_not_housed, of the months since the earliest label or recourse.",
    ),
    Indicator(
        "households_seen_by_source",
        "households",
        "Households of the stock that a source named this month (a household seen by several "
        "sources counts for each).",
        ("source",),
    ),
    Indicator(
        "households_seen_only_by_source",
        "households",
        "Households of the stock that only this source named this month: what the territory "
        "would miss without it.",
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
                "dimensions": list(i.dimensions),
                "additive": i.additive,
            }
            for i in INDICATORS
        ],
        schema={
            "indicator": pl.String,
            "unit": pl.String,
            "definition": pl.String,
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
        lines += [f"## `{i.name}` ({i.unit})", "", i.definition, ""]
        if i.dimensions:
            dims = ", ".join(f"`{d}`" for d in i.dimensions)
            rule = " The parts of each dimension add up to the total." if i.additive else ""
            lines += [f"Dimensions: {dims}.{rule}", ""]
    return "\n".join(lines)
