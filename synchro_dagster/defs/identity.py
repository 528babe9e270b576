"""Identity assets: who is who across sources and months (keyed tokens in, surrogate ids out)."""

import dagster as dg

from synchro_dagster import months, warehouse
from synchro_dagster.defs.common import (
    OWNERS,
    check_result,
    check_spec,
    code_version,
    failing_without_text,
    require_months_in_order,
    territory_key,
)
from synchro_dagster.defs.partitions import partition_month
from synchro_dagster.identity.checks import (
    MAX_MERGE_RATE,
    MAX_RECORDS_PER_PERSON,
    identity_checks,
    identity_figures,
)
from synchro_dagster.identity.linkage import LinkageCapacityError
from synchro_dagster.identity.persons import link_month, write_month
from synchro_dagster.settings import Settings
from synchro_dagster.sources import all_sources

PERSON_LINKS = dg.AssetKey(["identity", "person_links"])
HOUSEHOLDS = dg.AssetKey(["identity", "households"])
IDENTITY = [PERSON_LINKS, HOUSEHOLDS]


def identity_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    version = code_version("synchro_dagster.identity.persons", "synchro_dagster.identity.checks")

    @dg.multi_asset(
        specs=[
            dg.AssetSpec(
                PERSON_LINKS,
                deps=[
                    *(dg.AssetKey(["staging", s]) for s in all_sources()),
                    # a month is linked against the ids the month before left: in a backfill,
                    # months go in order
                    dg.AssetDep(
                        PERSON_LINKS, partition_mapping=dg.TimeWindowPartitionMapping(-1, -1)
                    ),
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
                code_version=version,
                partitions_def=partitions,
                metadata={"dagster/table_name": "identity.person_links"},
            ),
            dg.AssetSpec(
                HOUSEHOLDS,
                deps=[PERSON_LINKS],
                description=(
                    "Grain: one row per person seen in the month, with its household_id. "
                    "Persons seen together in a partner household (a SI-SIAO group, a SYPLO "
                    "file, a hotel booking…) form one household; its id is carried from the "
                    "previous month by maximum overlap."
                ),
                group_name="identity",
                kinds={"duckdb"},
                owners=OWNERS,
                code_version=version,
                partitions_def=partitions,
                metadata={"dagster/table_name": "identity.households"},
            ),
        ],
        check_specs=[
            check_spec(
                "cluster_size",
                PERSON_LINKS,
                f"No person has more than {MAX_RECORDS_PER_PERSON} records in a month.",
                partitions,
            ),
            check_spec(
                "id_churn",
                PERSON_LINKS,
                f"Merges of known ids stay under {MAX_MERGE_RATE:.0%} of the persons seen.",
                partitions,
            ),
            check_spec(
                "model_estimate",
                PERSON_LINKS,
                "A model re-estimated on the territory's records this month passed its sanity "
                "checks (otherwise the model before it stays in use).",
                partitions,
            ),
        ],
        pool="duckdb",
        name="identity",
        partitions_def=partitions,
    )
    def _identity(context: dg.AssetExecutionContext, synchro: dg.ResourceParam[Settings]):
        month = partition_month(context.partition_key)
        with (
            failing_without_text(
                f"Identity of {context.partition_key}",
                "The month's previous ids are unchanged. Re-run the month; if it fails again, "
                "report the run id to the data engineer.",
            ),
            warehouse.connect(synchro.warehouse_path) as conn,
        ):
            require_months_in_order(conn, month, synchro)
            try:
                result = link_month(conn, month, synchro.retention_months)
            except LinkageCapacityError as full:
                raise dg.Failure(description=str(full)) from None
            write_month(conn, result)
            months.record(conn, month, "identity", context.run.run_id)
        figures = identity_figures(result)
        links = figures["identity.person_links"]
        context.log.info(
            f"{month:%Y-%m}: {links['dagster/row_count']} records, {links['persons']} persons, "
            f"{figures['identity.households']['households']} households."
        )
        links_key, households_key = (territory_key(synchro.territory, k) for k in IDENTITY)
        yield dg.MaterializeResult(asset_key=links_key, metadata=links)
        yield dg.MaterializeResult(
            asset_key=households_key, metadata=figures["identity.households"]
        )
        for outcome in identity_checks(result):
            yield check_result(outcome)

    return [_identity]
