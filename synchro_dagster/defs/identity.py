"""Identity assets: who is who across sources and months (keyed tokens in, surrogate ids out)."""

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from sources import all_sources
from synchro_dagster.defs.partitions import partition_month
from synchro_dagster.identity.persons import link_month, write_month

OWNERS = ["team:observatoire"]
CODE_VERSION = "1"
MAX_RECORDS_PER_PERSON = 60  # a month's records for one person beyond this is a linkage error
MAX_MERGE_RATE = 0.02  # merges of known ids over persons seen, per month


def identity_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    key = dg.AssetKey(["identity", "person_links"])

    @dg.multi_asset(
        specs=[
            dg.AssetSpec(
                key,
                deps=[
                    *(dg.AssetKey(["staging", s]) for s in all_sources()),
                    # a month is linked against the ids the month before left: in a backfill,
                    # months go in order
                    dg.AssetDep(key, partition_mapping=dg.TimeWindowPartitionMapping(-1, -1)),
                ],
                description=(
                    "Grain: one row per staged record of the month, with its person_id. "
                    "Records are linked on keyed tokens by the Fellegi-Sunter model "
                    "(synchro_dagster/identity/model.json), to each other and to the history; "
                    "known persons keep their ids, merges leave a row in "
                    "identity.person_aliases, churn is counted in identity.churn."
                ),
                group_name="identity",
                kinds={"duckdb", "splink"},
                owners=OWNERS,
                code_version=CODE_VERSION,
                partitions_def=partitions,
                metadata={"dagster/table_name": "identity.person_links"},
            ),
            dg.AssetSpec(
                dg.AssetKey(["identity", "households"]),
                deps=[key],
                description=(
                    "Grain: one row per person seen in the month, with its household_id. "
                    "Persons seen together in a partner household (a SI-SIAO group, a SYPLO "
                    "file, a hotel booking…) form one household; its id is carried from the "
                    "previous month by maximum overlap."
                ),
                group_name="identity",
                kinds={"duckdb"},
                owners=OWNERS,
                code_version=CODE_VERSION,
                partitions_def=partitions,
                metadata={"dagster/table_name": "identity.households"},
            ),
        ],
        check_specs=[
            dg.AssetCheckSpec(
                "cluster_size",
                asset=key,
                description=f"No person has more than {MAX_RECORDS_PER_PERSON} records in a month.",
            ),
            dg.AssetCheckSpec(
                "id_churn",
                asset=key,
                description=f"Merges of known ids stay under {MAX_MERGE_RATE:.0%}"
                " of the persons seen.",
            ),
            dg.AssetCheckSpec(
                "model_estimate",
                asset=key,
                description="A model re-estimated on the territory's records this month passed "
                "its sanity checks (otherwise the model before it stays in use).",
            ),
        ],
        pool="duckdb",
        name="identity",
        partitions_def=partitions,
    )
    def _identity(context: dg.AssetExecutionContext, duckdb: DuckDBResource):
        month = partition_month(context.partition_key)
        with duckdb.get_connection() as conn:
            result = link_month(conn, month)
            write_month(conn, result)
        links, households = result.links, result.households
        persons = links["person_id"].n_unique()
        per_person = links.group_by("person_id").len()["len"].max() or 0
        sources = links.group_by("person_id").agg(pl.col("source").n_unique())["source"]
        multi = float((sources >= 2).mean()) if persons else 0.0
        churn = {f"{e}_{k}": n for (e, k), n in result.churn.items()}
        merged = result.churn[("person", "merged")]
        ambiguous = result.churn[("record", "ambiguous")]
        estimate = result.estimate
        context.log.info(
            f"{month:%Y-%m}: {links.height} records, {persons} persons, "
            f"{households['household_id'].n_unique()} households."
        )
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                "dagster/row_count": links.height,
                "persons": persons,
                "share_seen_by_two_sources_or_more": round(multi, 4),
                "share_of_records_ambiguous": round(ambiguous / max(links.height, 1), 4),
                "model_in_use": (
                    f"estimated on the territory in {result.model_from:%Y-%m}"
                    if result.model_from
                    else "shipped model.json"
                ),
                **churn,
            },
        )
        yield dg.MaterializeResult(
            asset_key=["identity", "households"],
            metadata={
                "dagster/row_count": households.height,
                "households": households["household_id"].n_unique(),
            },
        )
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name="cluster_size",
            passed=per_person <= MAX_RECORDS_PER_PERSON,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"largest_person_records": int(per_person)},
        )
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name="id_churn",
            passed=merged <= MAX_MERGE_RATE * max(persons, 1),
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"merged": merged, "persons": persons},
        )
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name="model_estimate",
            passed=estimate is None or estimate.accepted,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "estimated_this_month": estimate is not None,
                "records": estimate.records if estimate else 0,
                "problems": "; ".join(estimate.problems) if estimate else "",
            },
        )

    return [_identity]
