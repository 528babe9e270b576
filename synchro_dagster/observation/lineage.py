"""Column schema and column lineage of the observation and indicator tables.

One entry per column: type, meaning, and the upstream columns it is computed from
("staging.*.x" stands for column x of every staging table). Dagster shows the schema
and records the lineage (`dagster/column_schema`, `dagster/column_lineage`).
"""

from __future__ import annotations

import dagster as dg

from sources import all_sources

S = "staging.*."
LINKS = "identity.person_links."
HOUSEHOLDS = "identity.households."
HM = "core.household_months."
EV = "core.household_events."
EVIDENCE = [f"{S}event_date", f"{S}situation", f"{S}exit_date", f"{S}exit_destination"]

TABLES: dict[str, dict[str, tuple[str, str, list[str]]]] = {
    "core.household_months": {
        "month": ("DATE", "first day of the month", [f"{S}month"]),
        "household_id": (
            "BIGINT",
            "surrogate household id (identity as known at the month's end)",
            [f"{HOUSEHOLDS}household_id", f"{LINKS}person_id"],
        ),
        "status": ("VARCHAR", "active | housed | deceased | left_territory | inactive", EVIDENCE),
        "situation": ("VARCHAR", "DOMAIN §3 code; LOGE when housed", EVIDENCE),
        "ethos": ("VARCHAR", "ETHOS Light category of the stock (asylum apart)", EVIDENCE),
        "composition": (
            "VARCHAR",
            "latest composition a source gave; else, for one person, from sex and age",
            [f"{S}composition", f"{S}sex", f"{S}age_band"],
        ),
        "persons": (
            "INTEGER",
            "declared household size, else persons linked",
            [f"{S}household_size", f"{HOUSEHOLDS}person_id"],
        ),
        **{
            f"age_{band}": (
                "INTEGER",
                f"members aged {band.replace('_', '-')}",
                [f"{S}age_band", f"{HOUSEHOLDS}person_id"],
            )
            for band in ("0_17", "18_24", "25_34", "35_44", "45_54", "55_64")
        },
        "age_65_plus": ("INTEGER", "members aged 65 or more", [f"{S}age_band"]),
        "age_unknown": ("INTEGER", "members of unknown age", [f"{S}age_band"]),
        "first_month_seen": ("DATE", "first delivery naming the household", [f"{S}month"]),
        "months_since_first_seen": ("INTEGER", "months from first_month_seen", [f"{S}month"]),
        "sources": ("VARCHAR[]", "sources that named the household this month", [f"{S}source"]),
        "open_needs": (
            "VARCHAR[]",
            "needs open at the month's end",
            [f"{S}need_type", f"{S}need_status", f"{S}exit_date"],
        ),
        "needs_answered": (
            "VARCHAR[]",
            "needs answered this month",
            [f"{S}need_type", f"{S}entry_date", f"{S}request_fulfilled", f"{S}exit_date"],
        ),
        "answers": (
            "VARCHAR[]",
            "answers received this month",
            [f"{S}entry_date", f"{S}request_fulfilled", f"{S}exit_destination", f"{S}programme"],
        ),
        "urgence_requests": ("INTEGER", "115 requests this month", [f"{S}record_token"]),
        "urgence_not_fulfilled": (
            "INTEGER",
            "of which not fulfilled",
            [f"{S}record_token", f"{S}request_fulfilled"],
        ),
        "priority_since": (
            "DATE",
            "earliest open SYPLO label / DALO recourse",
            [f"{S}need_since", f"{S}need_status"],
        ),
        "exit_date": (
            "DATE",
            "date of the exit behind a non-active status",
            [f"{S}exit_date", f"{S}event_date"],
        ),
        "housing_kind": (
            "VARCHAR",
            "social | private | adapted | housing_first | unknown",
            [f"{S}exit_destination", f"{S}programme"],
        ),
    },
    "core.household_events": {
        "month": ("DATE", "first day of the month", [f"{HM}month"]),
        "household_id": ("BIGINT", "household entering or leaving", [f"{HM}household_id"]),
        "flow": ("VARCHAR", "inflow | outflow", [f"{HM}status"]),
        "type": ("VARCHAR", "kind of inflow or outflow", [f"{HM}status", *EVIDENCE]),
        "housing_kind": ("VARCHAR", "for to_housing", [f"{HM}housing_kind"]),
        "merged_into": ("BIGINT", "for duplicate_merged", [f"{HOUSEHOLDS}household_id"]),
        "months_since_exit": (
            "INTEGER",
            "for returned_from_housing",
            [f"{S}exit_date", f"{S}exit_destination"],
        ),
    },
    "core.provenance": {
        "month": ("DATE", "first day of the month", [f"{HM}month"]),
        "household_id": ("BIGINT", "household-month explained", [f"{HM}household_id"]),
        "source": ("VARCHAR", "partner source", [f"{S}source"]),
        "file_sha256": ("VARCHAR", "delivered file (see lineage.files)", [f"{S}file_sha256"]),
        "row_number": ("BIGINT", "row as the partner sees it", [f"{S}row_number"]),
        "evidence_date": ("DATE", "date the record speaks for", [f"{S}event_date"]),
        "kind": ("VARCHAR", "homeless | housed | deceased | left_territory | unknown", EVIDENCE),
    },
    "marts.indicators": {
        "month": ("DATE", "first day of the month", [f"{HM}month", f"{EV}month"]),
        "indicator": ("VARCHAR", "see marts.indicator_definitions", []),
        "dimension": (
            "VARCHAR",
            "null for the total, else name=value",
            [
                f"{HM}situation",
                f"{HM}ethos",
                f"{HM}composition",
                f"{HM}sources",
                f"{HM}open_needs",
                f"{HM}answers",
                f"{EV}type",
                f"{EV}housing_kind",
            ],
        ),
        "value": (
            "DOUBLE",
            "the figure",
            [
                f"{HM}household_id",
                f"{HM}status",
                f"{HM}persons",
                f"{HM}months_since_first_seen",
                f"{HM}priority_since",
                f"{HM}urgence_not_fulfilled",
                f"{EV}flow",
            ],
        ),
    },
}


def column_schema(table: str) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name, kind, description=text)
            for name, (kind, text, _) in TABLES[table].items()
        ]
    )


def _deps(ref: str) -> list[dg.TableColumnDep]:
    schema, table, column = ref.split(".")
    tables = all_sources() if table == "*" else [table]
    return [
        dg.TableColumnDep(asset_key=dg.AssetKey([schema, t]), column_name=column) for t in tables
    ]


def column_lineage(table: str) -> dg.TableColumnLineage:
    return dg.TableColumnLineage(
        deps_by_column={
            name: [dep for ref in refs for dep in _deps(ref)]
            for name, (_, _, refs) in TABLES[table].items()
            if refs
        }
    )
