"""Where synchro reads and writes, its parameters, and the pseudonymisation key.

Everything comes from the environment with defaults for the embedded demo; no
global state: code receives a `Settings`.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

KEY_ENV = "SYNCHRO_PSEUDONYMISATION_KEY"
KEY_FILE_ENV = "SYNCHRO_PSEUDONYMISATION_KEY_FILE"
MIN_KEY_CHARS = 32


class MissingKeyError(RuntimeError):
    """No pseudonymisation key: nothing may be ingested."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    first_month: str = "2024-01"  # first monthly partition
    inactivity_days: int = 90  # no evidence for this long: the household is inactive
    lookback_months: int = 24  # no evidence for this long before: an inflow is "newly identified"
    max_rejection_rate: float = 0.05
    key_file: Path | None = field(default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir).resolve())
        if self.key_file is None:
            object.__setattr__(self, "key_file", self.data_dir / "secrets" / "pseudonymisation.key")

    @classmethod
    def from_env(cls, data_dir: Path | None = None) -> Settings:
        """Settings from the environment; `data_dir` overrides SYNCHRO_DATA_DIR."""
        key_file = os.environ.get(KEY_FILE_ENV)
        return cls(
            data_dir=data_dir or Path(os.environ.get("SYNCHRO_DATA_DIR", "data")),
            first_month=os.environ.get("SYNCHRO_FIRST_MONTH", "2024-01"),
            inactivity_days=int(os.environ.get("SYNCHRO_INACTIVITY_DAYS", "90")),
            lookback_months=int(os.environ.get("SYNCHRO_LOOKBACK_MONTHS", "24")),
            max_rejection_rate=float(os.environ.get("SYNCHRO_MAX_REJECTION_RATE", "0.05")),
            key_file=Path(key_file) if key_file else None,
        )

    @property
    def landing_dir(self) -> Path:
        return self.data_dir / "landing"

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse" / "synchro.duckdb"

    @property
    def snapshot_path(self) -> Path:
        """The analysts' read-only copy (household-level tables and indicators, no tokens)."""
        return self.data_dir / "published" / "analytics.duckdb"

    @property
    def dagster_home(self) -> Path:
        return self.data_dir / "dagster_home"

    @property
    def truth_dir(self) -> Path:
        return self.data_dir / "truth"


def pseudonymisation_key(settings: Settings) -> bytes:
    """The HMAC key: from the environment, else from the key file. Never logged, never stored."""
    value = os.environ.get(KEY_ENV)
    if value is None and settings.key_file is not None and settings.key_file.is_file():
        value = settings.key_file.read_text(encoding="utf-8").strip()
    if not value:
        raise MissingKeyError(
            "No pseudonymisation key: synchro will not read partner files without one.\n"
            f"  Set one in the environment:  export {KEY_ENV}=$(python -c "
            '"import secrets; print(secrets.token_hex(32))")\n'
            f"  or write it to {settings.key_file} (chmod 600), or name another file with "
            f"{KEY_FILE_ENV}.\n"
            "  For the demo only, `make demo` creates a throw-away key.\n"
            "  Keep the key outside the repository and the warehouse; losing it means new "
            "deliveries can no longer be linked to past ones."
        )
    if len(value) < MIN_KEY_CHARS:
        raise MissingKeyError(
            f"The pseudonymisation key is too short ({len(value)} characters; at least "
            f'{MIN_KEY_CHARS}). Generate one with: python -c "import secrets; '
            'print(secrets.token_hex(32))"'
        )
    return value.encode("utf-8")


def create_demo_key(path: Path) -> bool:
    """Writes a throw-away key (mode 0600) if none exists; True if it was created."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(secrets.token_hex(32) + "\n")
    return True
