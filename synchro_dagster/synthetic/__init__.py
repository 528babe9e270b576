"""The simulated territory: partner deliveries of fictitious households, with the truth behind them.

`generate` writes `out/landing/<YYYY-MM>/<source>/…` (each partner's files in
its native shape) and `out/truth/` (Parquet): which person and household each
delivered row is about, the true state of every household every month, the
true indicators, and the persons' true identities (all fictitious).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import polars as pl

from synchro_dagster.synthetic import deliveries, truth
from synchro_dagster.synthetic.params import PROFILE_NAMES, TerritoryParams, profile
from synchro_dagster.synthetic.territory import Territory, days_in_month, month_start

__all__ = ["PROFILE_NAMES", "GenerationResult", "TerritoryParams", "generate", "profile"]


@dataclass
class GenerationResult:
    out: Path
    months: list[date]
    households: int
    persons: int
    rows_per_source: Counter[str] = field(default_factory=Counter)
    files: int = 0
    defects: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        lines = [
            f"Simulated territory written to {self.out}",
            f"  months: {self.months[0]:%Y-%m} to {self.months[-1]:%Y-%m} ({len(self.months)})",
            f"  households: {self.households:,}   persons: {self.persons:,}",
            f"  files: {self.files:,}   rows: {sum(self.rows_per_source.values()):,}"
            f"   deliberately unusable rows: {self.defects:,}",
        ]
        lines += [f"    {src:<20} {n:>9,} rows" for src, n in sorted(self.rows_per_source.items())]
        lines.append(f"  generated in {self.seconds:.1f} s")
        return "\n".join(lines)


def generate(
    out: Path,
    start: date,
    months: int,
    households: int | None = None,
    seed: int = 42,
    params: TerritoryParams | None = None,
) -> GenerationResult:
    """Simulates `months` months from `start` and writes deliveries and truth under `out`."""
    t0 = time.perf_counter()
    params = params or TerritoryParams()
    if households is not None:
        params = replace(params, households=households)
    start = start.replace(day=1)
    out = Path(out)
    landing, truth_dir = out / "landing", out / "truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    territory = Territory(params, start, seed)
    initial_ids = list(territory.households)
    rng = random.Random(seed + 1)  # deliveries draw from their own stream
    result = GenerationResult(out, [], 0, 0)
    records: list[deliveries.TruthRecord] = []
    states = []
    counters: Counter[str] = Counter()  # partner reference numbers run on across months
    for index, seen, month_states in territory.simulate(months):
        first = month_start(start, index)
        ctx = deliveries.MonthContext(
            index, first, days_in_month(first), rng, params, territory.persons, counters
        )
        rows = [
            row for hm in seen for build in deliveries.BUILDERS.values() for row in build(ctx, hm)
        ]
        deliveries.break_some(ctx, rows)
        month_records = deliveries.write_month(landing, first, rows)
        records += month_records
        states += [
            (s.household_id, first, s.situation, s.status, s.composition, s.persons, s.housing_kind)
            for s in month_states
        ]
        result.months.append(first)
        result.files += len({r.file for r in month_records})
    rec_df = pl.DataFrame(
        [
            (
                r.month,
                r.source,
                r.file,
                r.row_number,
                r.person_id,
                r.household_id,
                r.defect,
                r.noise,
            )
            for r in records
        ],
        schema={
            "month": pl.Date,
            "source": pl.String,
            "file": pl.String,
            "row_number": pl.Int64,
            "person_id": pl.Int64,
            "household_id": pl.Int64,
            "defect": pl.String,
            "noise": pl.List(pl.String),
        },
        orient="row",
    )
    state_df = pl.DataFrame(
        states,
        orient="row",
        schema={
            "household_id": pl.Int64,
            "month": pl.Date,
            "situation": pl.String,
            "status": pl.String,
            "composition": pl.String,
            "persons": pl.Int64,
            "housing_kind": pl.String,
        },
    )
    persons = pl.DataFrame(
        [
            (
                p.id,
                p.identity.first_name,
                p.identity.birth_last_name,
                p.identity.usage_last_name,
                p.identity.sex,
                p.identity.birth_date,
                p.origin,
            )
            for p in territory.persons.values()
        ],
        schema={
            "person_id": pl.Int64,
            "first_name": pl.String,
            "birth_last_name": pl.String,
            "usage_last_name": pl.String,
            "sex": pl.String,
            "birth_date": pl.Date,
            "origin": pl.String,
        },
        orient="row",
    )
    rec_df.write_parquet(truth_dir / "records.parquet")
    state_df.write_parquet(truth_dir / "states.parquet")
    persons.write_parquet(truth_dir / "persons.parquet")
    truth.indicators(state_df, rec_df, initial_ids, start).write_parquet(
        truth_dir / "indicators.parquet"
    )
    result.households = len(territory.households)
    result.persons = len(territory.persons)
    result.rows_per_source = Counter(rec_df["source"].to_list())
    result.defects = rec_df["defect"].is_not_null().sum()
    result.seconds = time.perf_counter() - t0
    return result
