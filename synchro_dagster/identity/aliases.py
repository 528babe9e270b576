"""Retired ids and where they went: alias rows followed in time."""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from datetime import date

import polars as pl


class AliasResolver:
    """Follows alias rows forward in time: an id seen in month t goes where the first alias
    recorded after t sends it, and so on (an id retired, then claimed again, resolves right)."""

    def __init__(self, aliases: list[tuple[date, int, int]]) -> None:
        self._by_id: dict[int, list[tuple[date, int]]] = defaultdict(list)
        for month, alias_id, target in sorted(aliases):
            self._by_id[alias_id].append((month, target))

    def resolve(self, entity_id: int, seen: date) -> int:
        for _ in range(1000):  # a chain is a few links long; this bounds a corrupt one
            moves = self._by_id.get(entity_id)
            if not moves:
                return entity_id
            i = bisect_right(moves, (seen, float("inf")))
            if i == len(moves):
                return entity_id
            seen, entity_id = moves[i]
        raise RuntimeError("alias chain does not end: identity.*_aliases is corrupt")

    def resolved(self, frame: pl.DataFrame, id_column: str, month_column: str) -> pl.Series:
        """Today's id for each row's (id, month seen); only the rows of a retired id go through
        Python, the rest keep their id."""
        ids = frame[id_column]
        rows = ids.is_in(pl.Series(list(self._by_id), dtype=ids.dtype).implode()).arg_true()
        moved = [
            self.resolve(i, m)
            for i, m in zip(ids.gather(rows), frame[month_column].gather(rows), strict=True)
        ]
        return ids.clone().scatter(rows, pl.Series(moved, dtype=ids.dtype))
