"""The monthly partitions every stage shares: keys "YYYY-MM", one per observed month."""

from __future__ import annotations

from datetime import date

import dagster as dg


def monthly_partitions(first_month: str) -> dg.MonthlyPartitionsDefinition:
    return dg.MonthlyPartitionsDefinition(start_date=first_month, fmt="%Y-%m")


def partition_month(partition_key: str) -> date:
    """ "2025-03" -> date(2025, 3, 1), the DATE the warehouse stores."""
    return date.fromisoformat(f"{partition_key}-01")
