"""What a check found, as plain data: every stage's rules return these, `defs/` turns them into
Dagster check results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    passed: bool
    metadata: dict[str, object] = field(default_factory=dict)  # counts and rates, never a row
    severity: Literal["ERROR", "WARN"] = "ERROR"
