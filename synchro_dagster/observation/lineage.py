"""Column lineage of the observation and indicator tables: the upstream columns each column is
computed from ("staging.*.x" stands for column x of every staging table).

Plain data; `defs/` turns it into Dagster's `dagster/column_lineage`, and the columns' types
and meanings come from `warehouse.py`.
"""

from __future__ import annotations

from synchro_dagster.sources import all_sources

S = "staging.*."
LINKS = "identity.person_links."
HOUSEHOLDS = "identity.households."
HM = "core.household_months."
EV = "core.household_events."
EVIDENCE = [f"{S}event_date", f"{S}situation", f"{S}exit_date", f"{S}exit_destination"]
AGE = [f"{S}age_band", f"{HOUSEHOLDS}person_id"]

LINEAGE: dict[str, dict[str, list[str]]] = {
    "core.household_months": {
        "month": [f"{S}month"],
        "household_id": [f"{HOUSEHOLDS}household_id", f"{LINKS}person_id"],
        "status": EVIDENCE,
        "situation": EVIDENCE,
        "ethos": EVIDENCE,
        "composition": [f"{S}composition", f"{S}sex", f"{S}age_band"],
        "persons": [f"{S}household_size", f"{HOUSEHOLDS}person_id"],
        **{f"age_{b}": AGE for b in ("0_17", "18_24", "25_34", "35_44", "45_54", "55_64")},
        "age_65_plus": [f"{S}age_band"],
        "age_unknown": [f"{S}age_band"],
        "first_month_seen": [f"{S}month"],
        "months_since_first_seen": [f"{S}month"],
        "sources": [f"{S}source"],
        "open_needs": [f"{S}need_type", f"{S}need_status", f"{S}exit_date"],
        "needs_answered": [
            f"{S}need_type",
            f"{S}entry_date",
            f"{S}request_fulfilled",
            f"{S}exit_date",
        ],
        "answers": [
            f"{S}entry_date",
            f"{S}request_fulfilled",
            f"{S}exit_destination",
            f"{S}programme",
        ],
        "urgence_requests": [f"{S}record_token"],
        "urgence_not_fulfilled": [f"{S}record_token", f"{S}request_fulfilled"],
        "priority_since": [f"{S}need_since", f"{S}need_status"],
        "exit_date": [f"{S}exit_date", f"{S}event_date"],
        "housing_kind": [f"{S}exit_destination", f"{S}programme"],
    },
    "core.household_events": {
        "month": [f"{HM}month"],
        "household_id": [f"{HM}household_id"],
        "flow": [f"{HM}status"],
        "type": [f"{HM}status", *EVIDENCE],
        "housing_kind": [f"{HM}housing_kind"],
        "merged_into": [f"{HOUSEHOLDS}household_id"],
        "months_since_exit": [f"{S}exit_date", f"{S}exit_destination"],
    },
    "core.provenance": {
        "month": [f"{HM}month"],
        "household_id": [f"{HM}household_id"],
        "source": [f"{S}source"],
        "file_sha256": [f"{S}file_sha256"],
        "row_number": [f"{S}row_number"],
        "evidence_date": [f"{S}event_date"],
        "kind": EVIDENCE,
    },
    "marts.indicators": {
        "month": [f"{HM}month", f"{EV}month"],
        "indicator": [],
        "dimension": [
            f"{HM}situation",
            f"{HM}ethos",
            f"{HM}composition",
            f"{HM}sources",
            f"{HM}open_needs",
            f"{HM}answers",
            f"{EV}type",
            f"{EV}housing_kind",
        ],
        "value": [
            f"{HM}household_id",
            f"{HM}status",
            f"{HM}persons",
            f"{HM}months_since_first_seen",
            f"{HM}priority_since",
            f"{HM}urgence_not_fulfilled",
            f"{EV}flow",
        ],
    },
}
# the revision computes the same figures again, with identity as known at its vintage
LINEAGE["marts.revised_indicators"] = {"vintage": [], **LINEAGE["marts.indicators"]}


def column_deps(table: str) -> dict[str, list[tuple[str, str]]]:
    """Column -> the (upstream table, column) pairs it is computed from, staging expanded."""
    deps: dict[str, list[tuple[str, str]]] = {}
    for column, refs in LINEAGE[table].items():
        if not refs:
            continue
        deps[column] = []
        for ref in refs:
            schema, name, upstream = ref.split(".")
            names = all_sources() if name == "*" else [name]
            deps[column] += [(f"{schema}.{n}", upstream) for n in names]
    return deps
