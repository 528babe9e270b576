"""Ingestion throughput: read, map, validate, tokenise and write, against a bare Polars read.

Generates one month of a large territory (default 30,000 households: about
100,000 delivered rows), then for each source times, in the same run,
  bare: pl.read_excel / pl.read_csv of the same files (no header search, no mapping);
  full: stage_month (read, map, validate, tokenise) + the transactional DuckDB write (the
        write's own share printed beside it: its commit makes the rows durable);
  checks: the four staging checks the Dagster asset then reports (`staging_checks`).
Prints rows/s and the full/bare ratio per format. Figures only: nothing is asserted.

    .venv/bin/python bench/ingest.py [--households 30000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from synchro_dagster.ingest.checks import staging_checks
from synchro_dagster.ingest.stage import delivered_files, stage_month
from synchro_dagster.ingest.store import write_source_month
from synchro_dagster.sources import all_sources
from synchro_dagster.synthetic import generate

MONTH = date(2025, 1, 1)
KEY = b"bench-key-0123456789abcdef0123456789"


def bare_read(path: Path) -> int:
    if path.suffix == ".csv":
        return pl.read_csv(path, separator=";", encoding="utf8-lossy", infer_schema=False).height
    # every sheet, as the ingestion reads every sheet to find the data
    return sum(df.height for df in pl.read_excel(path, sheet_id=0).values())


def best_of(repeat: int, fn) -> tuple[float, object]:
    """The fastest of `repeat` calls, and what that call returned."""
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        runs.append((time.perf_counter() - t0, value))
    return min(runs, key=lambda run: run[0])


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--households", type=int, default=30_000)
    args.add_argument("--repeat", type=int, default=3)
    opts = args.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print(f"generating one month of {opts.households:,} households ...", flush=True)
        generate(root, MONTH, 1, opts.households, seed=5)
        landing = root / "landing"
        conn = duckdb.connect(str(root / "bench.duckdb"))
        totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0.0, 0.0])
        print(
            f"{'source':<20} {'fmt':<5} {'rows':>8} {'bare s':>8} {'full s':>8} {'write s':>8} "
            f"{'rows/s':>9} {'ratio':>6} {'checks s':>9}"
        )
        for source in all_sources().values():
            files = delivered_files(landing, source, MONTH)
            if not files:
                continue
            fmt = files[0].suffix.lstrip(".")
            bare, _ = best_of(opts.repeat, lambda files=files: [bare_read(f) for f in files])

            def full(source=source, files=files) -> tuple[int, float]:
                result = stage_month(landing, source, MONTH, KEY, files)
                t0 = time.perf_counter()
                write_source_month(conn, result, "bench")
                return result.rows_read, time.perf_counter() - t0

            full()
            seconds, (rows, write) = best_of(opts.repeat, full)
            checks, _ = best_of(opts.repeat, lambda s=source: staging_checks(conn, s, MONTH, 1.0))
            for i, value in enumerate((rows, bare, seconds, write, checks)):
                totals[fmt][i] += value
            print(
                f"{source.id:<20} {fmt:<5} {rows:>8,} {bare:>8.3f} {seconds:>8.3f} {write:>8.3f} "
                f"{rows / seconds:>9,.0f} {seconds / bare:>6.1f} {checks:>9.3f}"
            )
        print()
        for fmt, (rows, bare, seconds, write, checks) in sorted(totals.items()):
            print(
                f"ALL {fmt:<5} {int(rows):>8,} rows  bare {bare:.2f} s  full {seconds:.2f} s "
                f"(write {write:.2f} s)  {rows / seconds:,.0f} rows/s  ratio full/bare "
                f"{seconds / bare:.1f}  checks {checks:.2f} s"
            )
        conn.close()


if __name__ == "__main__":
    main()
