"""Settings from one place: the environment, the data directory's synchro.toml, defaults."""

from __future__ import annotations

import pytest

from synchro_dagster.defs import build_definitions
from synchro_dagster.settings import Settings, create_demo_key, pseudonymisation_key, save_months


def test_partitions_run_from_the_first_month_delivered_to_the_configured_last(
    tmp_path, monkeypatch
):
    for name in ("SYNCHRO_FIRST_MONTH", "SYNCHRO_LAST_MONTH"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "landing" / "2025-03").mkdir(parents=True)
    (tmp_path / "landing" / "2025-05").mkdir()
    assert Settings.from_env(tmp_path).first_month == "2025-03"
    save_months(tmp_path, "2025-01", "2025-12")
    settings = Settings.from_env(tmp_path)
    defs = build_definitions(settings)
    keys = defs.resolve_job_def("monthly_job").partitions_def.get_partition_keys()
    assert keys == [f"2025-{m:02d}" for m in range(1, 13)]
    assert defs.resources["synchro"] is settings  # the one settings object, not a copy
    monkeypatch.setenv("SYNCHRO_FIRST_MONTH", "2025-02")  # the environment wins over the file
    assert Settings.from_env(tmp_path).first_month == "2025-02"


def test_missing_key_message_says_how_to_set_one(tmp_path, monkeypatch):
    monkeypatch.delenv("SYNCHRO_PSEUDONYMISATION_KEY", raising=False)
    with pytest.raises(Exception, match="SYNCHRO_PSEUDONYMISATION_KEY") as info:
        pseudonymisation_key(Settings(data_dir=tmp_path))
    assert "make demo" in str(info.value)


def test_demo_key_is_private_and_never_overwritten(tmp_path, monkeypatch):
    monkeypatch.delenv("SYNCHRO_PSEUDONYMISATION_KEY", raising=False)
    settings = Settings(data_dir=tmp_path)
    assert create_demo_key(settings.key_file)
    assert settings.key_file.stat().st_mode & 0o777 == 0o600
    key = pseudonymisation_key(settings)
    assert not create_demo_key(settings.key_file)
    assert pseudonymisation_key(settings) == key and len(key) >= 32


def test_min_cell_comes_from_the_environment_then_synchro_toml_then_11(tmp_path, monkeypatch):
    monkeypatch.delenv("SYNCHRO_MIN_CELL", raising=False)
    assert Settings.from_env(tmp_path).min_cell == 11
    (tmp_path / "synchro.toml").write_text("min_cell = 5\n", encoding="utf-8")
    assert Settings.from_env(tmp_path).min_cell == 5
    monkeypatch.setenv("SYNCHRO_MIN_CELL", "20")
    assert Settings.from_env(tmp_path).min_cell == 20
    for bad in ("onze", "0", "2.5"):
        monkeypatch.setenv("SYNCHRO_MIN_CELL", bad)
        with pytest.raises(ValueError, match="SYNCHRO_MIN_CELL or min_cell in synchro.toml"):
            Settings.from_env(tmp_path)
