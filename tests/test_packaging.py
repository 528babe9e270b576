"""A plain `pip install .` into a fresh environment runs the demo from any directory."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from synchro_dagster.sources import all_sources

ROOT = Path(__file__).resolve().parents[1]
NOT_SHIPPED = shutil.ignore_patterns(
    ".git", ".venv", "data", "__pycache__", "*.egg-info", "build", ".*_cache"
)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_installed_wheel_runs_the_demo_from_another_directory(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(ROOT, project, ignore=NOT_SHIPPED)  # the source tree, not this checkout
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(project)],
        check=True,
    )
    shutil.rmtree(project)  # nothing may be read from the source tree any more
    site = Path(
        subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-c",
                "import synchro_dagster; print(synchro_dagster.__file__)",
            ],
            check=True,
            capture_output=True,
            text=True,
            cwd=tmp_path,
        ).stdout.strip()
    ).parent
    assert (site / "templates" / "dagster.yaml").is_file()
    assert not (site.parent / "sources").exists()  # no generic top-level package
    model = site / "identity" / "model.json"
    shipped = _digest(model)

    elsewhere, data = tmp_path / "elsewhere", tmp_path / "data"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNCHRO_", "DAGSTER_"))}
    env["SYNCHRO_PSEUDONYMISATION_KEY"] = "packaging-test-" + "0123456789abcdef" * 3

    def synchro(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(venv / "bin" / "synchro"), *args],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )

    demo = synchro("demo", "--data-dir", str(data), "--months", "2", "--households", "60")
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert "Analyst snapshot refreshed" in demo.stdout
    assert (data / "published" / "analytics.duckdb").is_file()
    assert (data / "published" / "public" / "indicators.xlsx").is_file()
    for suffix in (".xlsx", ".html", ".pdf"):  # the last month's report
        assert (data / "published" / "reports" / f"synchro_2025-02{suffix}").is_file()
    last = sorted(p.name for p in (data / "landing").iterdir())[-1]
    feedback = sorted(p.relative_to(data) for p in (data / "published" / "feedback").rglob("*"))
    assert [p for p in feedback if last in p.name] == [
        Path("published", "feedback", s, f"retour_{s}_{last}.xlsx") for s in sorted(all_sources())
    ]  # one workbook per partner for the last month
    assert (data / "dagster_home" / "dagster.yaml").is_file()
    train = synchro("identity", "train", "--data-dir", str(data))
    assert train.returncode == 0, train.stderr[-2000:]
    assert (data / "identity" / "model.json").is_file()
    assert _digest(model) == shipped  # the installed package is never written to
    assert list(elsewhere.iterdir()) == []  # nor the directory the command ran from
