"""Where synchro reads and writes, its parameters, and the pseudonymisation key.

Everything comes from the environment, then from the data directory's `synchro.toml` (which
the demo writes: the months its territory covers), then from defaults; no global state: code
receives a `Settings`, and Dagster's assets and sensors receive the same object as a resource.
"""

from __future__ import annotations

import os
import re
import secrets
import tomllib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

KEY_ENV = "SYNCHRO_PSEUDONYMISATION_KEY"
KEY_FILE_ENV = "SYNCHRO_PSEUDONYMISATION_KEY_FILE"
MIN_KEY_CHARS = 32
SETTINGS_FILE = "synchro.toml"  # in the data directory
MONTH_FOLDER = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
DEFINITIONS_MODULE = "synchro_dagster.definitions"  # the code location every workspace loads
TERRITORY_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


class MissingKeyError(RuntimeError):
    """No pseudonymisation key: nothing may be ingested."""


class SettingsError(ValueError):
    """A setting with a value synchro cannot use: the message names it, where it came from and
    what is allowed."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    first_month: str | None = None  # first monthly partition; None: the first month delivered
    last_month: str | None = None  # last partition; None: the last complete month by the clock
    inactivity_days: int = 90  # no evidence for this long: the household is inactive
    lookback_months: int = 24  # no evidence for this long before: an inflow is "newly identified"
    max_rejection_rate: float = 0.05
    min_cell: int = 11  # a published cell describes at least this many households (else secret)
    retention_months: int = 24  # a person no partner named for this many months is deleted
    revision_months: int = 3  # each month's run revises this many months before it too
    landing_retention_days: int = 30  # partner files are deleted this long after ingestion
    publish_group: str | None = None  # OS group that may read the snapshot and published files
    run_wait_seconds: int = 1800  # a run waits this long for another one to end, then gives up
    rights_contact: str = "le délégué à la protection des données (DPO) du SIAO"
    key_file: Path | None = field(default=None)
    # one of several territories on a shared Dagster instance (README "Several territories"):
    # its code location, run queue and runs are its own; None: a data directory on its own
    territory: str | None = None

    def __post_init__(self) -> None:
        if self.territory is not None and not TERRITORY_NAME.match(self.territory):
            raise SettingsError(
                f"SYNCHRO_TERRITORY={self.territory!r} is not a territory name: 1 to 40 "
                "lower-case letters, digits or hyphens, starting with a letter or digit "
                "(e.g. dijon, cote-d-or)."
            )
        whole = isinstance(self.min_cell, int) and not isinstance(self.min_cell, bool)
        if not whole or self.min_cell < 1:
            raise ValueError(
                f"min_cell must be a whole number of households, at least 1 (got "
                f"{self.min_cell!r}): set SYNCHRO_MIN_CELL or min_cell in synchro.toml "
                "(default 11)"
            )
        object.__setattr__(self, "data_dir", Path(self.data_dir).resolve())
        if self.key_file is None:
            object.__setattr__(self, "key_file", self.data_dir / "secrets" / "pseudonymisation.key")
        if self.first_month is None:
            delivered = landing_months(self.landing_dir)
            first = delivered[0] if delivered else last_complete_month(date.today())
            object.__setattr__(self, "first_month", first)
        if self.lookback_months > self.retention_months:
            raise SettingsError(
                f"SYNCHRO_LOOKBACK_MONTHS ({self.lookback_months}) is longer than "
                f"SYNCHRO_RETENTION_MONTHS ({self.retention_months}): the look-back would look "
                "for records retention has deleted. Shorten the look-back or lengthen the "
                "retention."
            )

    @classmethod
    def from_env(cls, data_dir: Path | None = None) -> Settings:
        """Settings from the environment, else `DIR/synchro.toml`; `data_dir` overrides
        SYNCHRO_DATA_DIR."""
        data_dir = Path(data_dir or os.environ.get("SYNCHRO_DATA_DIR", "data"))
        path = data_dir / SETTINGS_FILE
        saved = tomllib.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

        def value(name: str, default: object = None) -> object:
            return os.environ.get(f"SYNCHRO_{name.upper()}", saved.get(name, default))

        def number(name: str, default: float, kind: type = int) -> float:
            raw = value(name, default)
            env = f"SYNCHRO_{name.upper()}"
            where = "the environment" if env in os.environ else f"{path} ({name})"
            try:
                parsed = kind(raw)
            except (TypeError, ValueError):
                parsed = None
            if parsed is None or parsed <= 0 or (kind is int and parsed != float(raw)):
                what = "a whole number, 1 or more" if kind is int else "a number above 0"
                raise SettingsError(
                    f"{env}={raw!r} (from {where}) is not {what}: set {env} or {name} in "
                    f"synchro.toml (default {default})."
                )
            return parsed

        key_file = os.environ.get(KEY_FILE_ENV)
        return cls(
            data_dir=data_dir,
            first_month=value("first_month"),
            last_month=value("last_month"),
            inactivity_days=number("inactivity_days", 90),
            lookback_months=number("lookback_months", 24),
            max_rejection_rate=number("max_rejection_rate", 0.05, float),
            min_cell=number("min_cell", 11),
            retention_months=number("retention_months", 24),
            revision_months=number("revision_months", 3),
            landing_retention_days=number("landing_retention_days", 30),
            run_wait_seconds=number("run_wait_seconds", 1800),
            publish_group=value("publish_group") or None,
            rights_contact=value("rights_contact", cls.rights_contact),
            key_file=Path(key_file) if key_file else None,
            territory=value("territory") or None,
        )

    @property
    def location_name(self) -> str:
        """The Dagster code location this data directory's runs belong to: one per territory
        on a shared instance, else the module's own name (as workspace.yaml loads it)."""
        return territory_location(self.territory) if self.territory else DEFINITIONS_MODULE

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
    def public_dir(self) -> Path:
        """The public indicators (aggregates only, small cells suppressed): anyone may read."""
        return self.data_dir / "published" / "public"

    @property
    def feedback_dir(self) -> Path:
        """One workbook per partner and month: what to fix in the next delivery."""
        return self.data_dir / "published" / "feedback"

    @property
    def reports_dir(self) -> Path:
        """The monthly steering reports: synchro_<YYYY-MM>.xlsx, .html and .pdf."""
        return self.data_dir / "published" / "reports"

    @property
    def dagster_home(self) -> Path:
        return self.data_dir / "dagster_home"

    @property
    def audit_dir(self) -> Path:
        """The audit trail's JSON-lines copy (`audit.events` is the table)."""
        return self.data_dir / "audit"

    @property
    def truth_dir(self) -> Path:
        return self.data_dir / "truth"


def territory_location(territory: str) -> str:
    """A territory's code location, and its runs' Celery queue."""
    return f"synchro-{territory}"


def pseudonymisation_key(settings: Settings) -> bytes:
    """The HMAC key: from the environment, else from the key file. Never logged, never stored.
    After a rotation (`synchro key rotate`) it is a chain, one key per line, oldest first."""
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
    keys = [line.strip() for line in value.splitlines() if line.strip()]  # rotated: a chain
    if short := [len(k) for k in keys if len(k) < MIN_KEY_CHARS]:
        raise MissingKeyError(
            f"The pseudonymisation key is too short ({short[0]} characters; at least "
            f'{MIN_KEY_CHARS}). Generate one with: python -c "import secrets; '
            'print(secrets.token_hex(32))"'
        )
    return "\n".join(keys).encode("utf-8")


def private_dir(path: Path) -> Path:
    """A directory only its owner may enter (warehouse, Dagster home, secrets): what is inside
    is person-level data or a key."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def create_demo_key(path: Path) -> bool:
    """Writes a throw-away key (mode 0600) if none exists; True if it was created."""
    if path.exists():
        return False
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(secrets.token_hex(32) + "\n")
    return True


def landing_months(landing: Path) -> list[str]:
    """The months ("YYYY-MM") with a folder under landing/, in order."""
    if not landing.is_dir():
        return []
    return sorted(p.name for p in landing.iterdir() if p.is_dir() and MONTH_FOLDER.match(p.name))


def last_complete_month(today: date) -> str:
    previous = today.replace(day=1).toordinal() - 1
    return date.fromordinal(previous).strftime("%Y-%m")


def save_months(data_dir: Path, first_month: str, last_month: str) -> Path:
    """Writes the months a data directory covers to its `synchro.toml` (a simulated territory
    lies in the past: its partitions end with its last month, not with the clock)."""
    path = data_dir / SETTINGS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# The months this data directory covers; SYNCHRO_FIRST_MONTH / SYNCHRO_LAST_MONTH in\n"
        "# the environment override them.\n"
        f'first_month = "{first_month}"\nlast_month = "{last_month}"\n',
        encoding="utf-8",
    )
    return path
