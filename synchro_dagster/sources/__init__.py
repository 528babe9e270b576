"""Partner sources: one module per partner, each declaring a `SOURCE` (see `sources.spec`).

Adding a partner is adding a module here; `all_sources()` finds it.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from synchro_dagster.sources.spec import Source

_NOT_SOURCES = {"spec", "vocab"}


@cache
def all_sources() -> dict[str, Source]:
    found: dict[str, Source] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name in _NOT_SOURCES or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        source: Source = module.SOURCE
        if source.id != info.name:
            raise ValueError(
                f"sources/{info.name}.py declares id {source.id!r}; use the module name"
            )
        found[source.id] = source
    return found


def get(source_id: str) -> Source:
    try:
        return all_sources()[source_id]
    except KeyError:
        known = ", ".join(all_sources())
        raise KeyError(f"unknown source {source_id!r}; known sources: {known}") from None
