"""Landing: partner files as delivered, and the sensor that turns a new or changed file into a run.

`landing/<source>` assets are external: nothing computes them, the sensor
records each file (name, sha256, size) as a materialisation of its month.
"""

import json
from pathlib import Path

import dagster as dg
import duckdb

from synchro_dagster import warehouse
from synchro_dagster.defs.common import OWNERS, territory_key
from synchro_dagster.defs.partitions import partition_month
from synchro_dagster.ingest.stage import delivered_files, sha256_of
from synchro_dagster.settings import Settings
from synchro_dagster.sources import all_sources

# what a month recomputes after a source's staging (for a later month: all that depends on it)
AFTER_STAGING = [
    dg.AssetKey(["identity", "person_links"]),
    dg.AssetKey(["identity", "households"]),
    dg.AssetKey(["core", "household_months"]),
    dg.AssetKey(["core", "household_events"]),
    dg.AssetKey(["core", "provenance"]),
    dg.AssetKey(["marts", "indicators"]),
]


def landing_specs(partitions: dg.PartitionsDefinition) -> list[dg.AssetSpec]:
    return [
        dg.AssetSpec(
            key=["landing", source.id],
            description=(
                f"Files delivered by {source.partner} under "
                f"`data/landing/YYYY-MM/{source.id}/` (patterns: "
                f"{', '.join(f'`{k.pattern}`' for k in source.files)})."
            ),
            group_name="landing",
            kinds={"file"},
            owners=OWNERS,
            partitions_def=partitions,
        )
        for source in all_sources().values()
    ]


def scan_landing(
    landing: Path, partition_keys: set[str], known: dict[str, list] | None = None
) -> dict[str, dict[str, object]]:
    """Every delivered file of a known month: relative path -> source, month, sha256, size.

    A file whose size and modification time are those recorded in `known` (name -> [sha256,
    size, mtime_ns]) keeps its recorded sha256: a tick does not re-read every delivery."""
    known = known or {}
    found: dict[str, dict[str, object]] = {}
    if not landing.is_dir():
        return found
    for month_dir in sorted(p for p in landing.iterdir() if p.is_dir()):
        if month_dir.name not in partition_keys:
            continue
        month = partition_month(month_dir.name)
        for source in all_sources().values():
            for path in delivered_files(landing, source, month):
                name, stat = path.relative_to(landing).as_posix(), path.stat()
                recorded = known.get(name)
                same = recorded and recorded[1:] == [stat.st_size, stat.st_mtime_ns]
                found[name] = {
                    "source": source.id,
                    "month": month_dir.name,
                    "sha256": recorded[0] if same else sha256_of(path),
                    "size": stat.st_size,
                    "mtime_ns": stat.st_mtime_ns,
                }
    return found


def warehouse_state(path: Path) -> tuple[set[tuple[str, str]], list[str]] | None:
    """(file name, sha256) of every ingested file, and the months with indicators ("YYYY-MM");
    None while a run holds the warehouse."""
    if not path.exists():
        return set(), []
    try:
        with warehouse.read_only(path) as conn:
            tables = set(warehouse.existing_tables(conn))
            files = set()
            if "lineage.files" in tables:
                files = set(conn.execute("SELECT file_name, sha256 FROM lineage.files").fetchall())
            months = []
            if "marts.indicators" in tables:
                months = [
                    m
                    for (m,) in conn.execute(
                        "SELECT DISTINCT strftime(month, '%Y-%m') FROM marts.indicators ORDER BY 1"
                    ).fetchall()
                ]
            return files, months
    except duckdb.IOException:
        return None


def requests_for(
    fresh: dict[str, dict[str, object]],
    ingested: set[tuple[str, str]],
    computed: list[str],
    territory: str | None = None,
) -> list[dg.RunRequest]:
    """Runs for new or changed files, in month order: each file re-stages its source-month and
    recomputes that month; every later month already computed is then recomputed once (its
    flows, ids and indicators depend on the months before it). Their assets are `territory`'s."""
    after = [territory_key(territory, k) for k in AFTER_STAGING]
    to_stage = sorted(
        (info["month"], name, info)
        for name, info in fresh.items()
        if (name, info["sha256"]) not in ingested
    )
    if not to_stage:
        return []
    first = to_stage[0][0]
    trigger = f"{to_stage[0][2]['source']}/{first}/{to_stage[0][2]['sha256']}"
    months = sorted({m for m, _, _ in to_stage} | {m for m in computed if m > first})
    requests = []
    for month in months:
        files = [(name, info) for m, name, info in to_stage if m == month]
        for name, info in files:
            source, sha = info["source"], info["sha256"]
            requests.append(
                dg.RunRequest(
                    run_key=f"{source}/{month}/{sha}",
                    partition_key=month,
                    asset_selection=[
                        territory_key(territory, dg.AssetKey(["staging", source])),
                        *after,
                    ],
                    tags={"synchro/file": name, "synchro/sha256": sha},
                )
            )
        if not files:
            requests.append(
                dg.RunRequest(
                    run_key=f"recompute/{month}/after/{trigger}",
                    partition_key=month,
                    asset_selection=after,
                    tags={"synchro/recompute_after": trigger},
                )
            )
    return requests


def landing_sensor(
    job: "dg.UnresolvedAssetJobDefinition", partitions: dg.PartitionsDefinition
) -> dg.SensorDefinition:
    @dg.sensor(
        name="landing_sensor",
        job=job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="One run per new or changed partner file under data/landing (keyed on its "
        "sha256): the file's source and month are re-staged, then everything after; every "
        "later month already computed is then recomputed, in month order.",
    )
    def _sensor(
        context: dg.SensorEvaluationContext, synchro: dg.ResourceParam[Settings]
    ) -> dg.SensorResult:
        seen: dict[str, list] = json.loads(context.cursor) if context.cursor else {}
        keys = set(partitions.get_partition_keys(dynamic_partitions_store=context.instance))
        current = scan_landing(synchro.landing_dir, keys, seen)
        fresh = {n: i for n, i in current.items() if (seen.get(n) or [None])[0] != i["sha256"]}
        state = warehouse_state(synchro.warehouse_path) if fresh else (set(), [])
        if state is None:  # a run holds the warehouse: look again at the next tick
            return dg.SensorResult(skip_reason="the warehouse is being written; retrying later")
        events = [
            dg.AssetMaterialization(
                asset_key=territory_key(
                    synchro.territory, dg.AssetKey(["landing", info["source"]])
                ),
                partition=info["month"],
                metadata={"file": name, "sha256": info["sha256"], "size_bytes": info["size"]},
            )
            for name, info in sorted(fresh.items())
        ]
        # files already staged (`synchro run`) skipped
        requests = requests_for(fresh, *state, synchro.territory)
        cursor = json.dumps(
            {n: [i["sha256"], i["size"], i["mtime_ns"]] for n, i in current.items()}
        )
        if not requests:
            return dg.SensorResult(
                skip_reason="no new or changed file", cursor=cursor, asset_events=events
            )
        return dg.SensorResult(run_requests=requests, asset_events=events, cursor=cursor)

    return _sensor
