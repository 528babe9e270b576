"""The rules a month of identity is judged by, and the figures reported with it."""

from __future__ import annotations

import polars as pl

from synchro_dagster.checks import CheckOutcome
from synchro_dagster.identity.persons import MonthIdentity

MAX_RECORDS_PER_PERSON = 60  # a month's records for one person beyond this is a linkage error
MAX_MERGE_RATE = 0.02  # merges of known ids over persons seen, per month


def identity_figures(result: MonthIdentity) -> dict[str, dict[str, object]]:
    """Counts for `identity.person_links` and `identity.households` (no id, no token)."""
    links, households = result.links, result.households
    persons = links["person_id"].n_unique()
    sources = links.group_by("person_id").agg(pl.col("source").n_unique())["source"]
    return {
        "identity.person_links": {
            "dagster/row_count": links.height,
            "persons": persons,
            "share_seen_by_two_sources_or_more": (
                round(float((sources >= 2).mean()), 4) if persons else 0.0
            ),
            "share_of_records_ambiguous": round(
                result.churn[("record", "ambiguous")] / max(links.height, 1), 4
            ),
            "model_in_use": (
                f"estimated on the territory in {result.model_from:%Y-%m}"
                if result.model_from
                else "shipped model.json"
            ),
            **{f"{e}_{k}": n for (e, k), n in result.churn.items()},
        },
        "identity.households": {
            "dagster/row_count": households.height,
            "households": households["household_id"].n_unique(),
        },
    }


def identity_checks(result: MonthIdentity) -> list[CheckOutcome]:
    links = result.links
    persons = links["person_id"].n_unique()
    per_person = links.group_by("person_id").len()["len"].max() or 0
    merged = result.churn[("person", "merged")]
    estimate = result.estimate
    return [
        CheckOutcome(
            "cluster_size",
            per_person <= MAX_RECORDS_PER_PERSON,
            {"largest_person_records": int(per_person)},
        ),
        CheckOutcome(
            "id_churn",
            merged <= MAX_MERGE_RATE * max(persons, 1),
            {"merged": merged, "persons": persons},
            severity="WARN",
        ),
        CheckOutcome(
            "model_estimate",
            estimate is None or estimate.accepted,
            {
                "estimated_this_month": estimate is not None,
                "records": estimate.records if estimate else 0,
                "problems": "; ".join(estimate.problems) if estimate else "",
            },
            severity="WARN",
        ),
    ]
