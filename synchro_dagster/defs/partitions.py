"""The monthly partitions every stage shares: keys "YYYY-MM", one per observed month."""

from __future__ import annotations

from datetime import date

import dagster as dg

from synchro_dagster.settings import Settings

TIMEZONE = "Europe/Paris"  # a month starts and the schedule fires on the territory's clock


def monthly_partitions(settings: Settings) -> dg.MonthlyPartitionsDefinition:
    """From the settings' first month to their last month (by default the last complete month
    by the clock: the one partners have just delivered)."""
    end = None
    if settings.last_month:
        last = partition_month(settings.last_month)
        end = date(last.year + last.month // 12, last.month % 12 + 1, 1).strftime("%Y-%m")
    return dg.MonthlyPartitionsDefinition(
        start_date=settings.first_month, end_date=end, fmt="%Y-%m", timezone=TIMEZONE
    )


def partition_month(partition_key: str) -> date:
    """ "2025-03" -> date(2025, 3, 1), the DATE the warehouse stores."""
    return date.fromisoformat(f"{partition_key}-01")
