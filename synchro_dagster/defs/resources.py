"""Resources: the DuckDB warehouse and synchro's own configuration."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from synchro_dagster.settings import Settings, pseudonymisation_key


class SynchroConfig(dg.ConfigurableResource):
    """Paths and thresholds from `Settings`; the key is read when needed, never kept in config."""

    data_dir: str
    max_rejection_rate: float = 0.05
    inactivity_days: int = 90
    lookback_months: int = 24
    key_file: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SynchroConfig:
        return cls(
            data_dir=str(settings.data_dir),
            max_rejection_rate=settings.max_rejection_rate,
            inactivity_days=settings.inactivity_days,
            lookback_months=settings.lookback_months,
            key_file=str(settings.key_file) if settings.key_file else None,
        )

    @property
    def settings(self) -> Settings:
        return Settings(
            data_dir=Path(self.data_dir),
            max_rejection_rate=self.max_rejection_rate,
            inactivity_days=self.inactivity_days,
            lookback_months=self.lookback_months,
            key_file=Path(self.key_file) if self.key_file else None,
        )

    @property
    def landing_dir(self) -> Path:
        return self.settings.landing_dir

    @property
    def warehouse_path(self) -> Path:
        return self.settings.warehouse_path

    @property
    def snapshot_path(self) -> Path:
        return self.settings.snapshot_path

    def key(self) -> bytes:
        return pseudonymisation_key(self.settings)
