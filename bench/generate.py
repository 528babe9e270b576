"""Simulated territory generation: time and peak memory, for the default metropole and France.

Each scenario runs in its own process so that its peak resident memory
(ru_maxrss) is its own. Figures only: nothing is asserted.

    .venv/bin/python bench/generate.py [--quick]   # --quick: the default territory only
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

SCENARIOS = {
    "default (2,000 households, 12 months)": (2_000, 12),
    "France-sized month (300,000 households, 1 month)": (300_000, 1),
}


def one(households: int, months: int) -> None:
    from synchro_dagster.synthetic import generate

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = generate(Path(tmp), date(2025, 1, 1), months, households, seed=42)
        seconds = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in Path(tmp, "landing").rglob("*") if p.is_file())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_mb": peak_mb,
                "rows": sum(result.rows_per_source.values()),
                "files": result.files,
                "landing_mb": size / 2**20,
                "rows_per_source": dict(result.rows_per_source),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--one", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(*args.one)
        return
    for name, (households, months) in SCENARIOS.items():
        if args.quick and households > 2_000:
            continue
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(households), str(months)],
            check=True,
            stdout=subprocess.PIPE,  # stderr passes through: a failing scenario shows why
            text=True,
        ).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(
            f"{name}: {r['seconds']:.1f} s, peak memory {r['peak_mb']:,.0f} MB, "
            f"{r['rows']:,} rows in {r['files']} files ({r['landing_mb']:.1f} MB), "
            f"{r['rows'] / r['seconds']:,.0f} rows/s"
        )
        for source, rows in sorted(r["rows_per_source"].items()):
            print(f"    {source:<20} {rows:>10,}")


if __name__ == "__main__":
    main()
