"""French conventions for what people read: `1 234`, `+0,6 %`, `05/12/2025`, `décembre 2025`.

Written by hand rather than through the system locale: a server's locale is rarely fr_FR, and
the report must read the same wherever it is built.
"""

from __future__ import annotations

import re
from datetime import date

NNBSP = "\u202f"  # narrow no-break space: thousands, and before % ; ? !
NBSP = "\u00a0"  # no-break space: before a colon, inside « »
MINUS = "\u2212"
MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
MONTHS_SHORT = (
    "janv.",
    "févr.",
    "mars",
    "avr.",
    "mai",
    "juin",
    "juil.",
    "août",
    "sept.",
    "oct.",
    "nov.",
    "déc.",
)


def thousands(n: int) -> str:
    """1234567 -> '1 234 567' (narrow no-break spaces), -1234 -> '−1 234'."""
    digits = f"{abs(n):,}".replace(",", NNBSP)
    return f"{MINUS}{digits}" if n < 0 else digits


def signed(n: int) -> str:
    """A change: '+12', '−1 234', '0'."""
    return f"+{thousands(n)}" if n > 0 else thousands(n)


def decimal(x: float, digits: int = 1) -> str:
    """9.4166 -> '9,4'; -1234.5 -> '−1 234,5'; thousands grouped as for integers."""
    x = x if round(x, digits) else 0.0  # never '−0,0'
    return f"{x:,.{digits}f}".replace(",", NNBSP).replace(".", ",").replace("-", MINUS)


def percent(share: float) -> str:
    """A relative change: 0.0061 -> '+0,6 %', -0.25 -> '−25,0 %'."""
    sign = "+" if round(share * 100, 1) > 0 else ""
    return f"{sign}{decimal(share * 100)}{NNBSP}%"


def day(d: date) -> str:
    """date(2025, 12, 5) -> '05/12/2025'."""
    return f"{d.day:02d}/{d.month:02d}/{d.year}"


def month_name(d: date) -> str:
    """date(2025, 12, 1) -> 'décembre 2025'."""
    return f"{MONTHS[d.month - 1]} {d.year}"


def month_short(d: date) -> str:
    """date(2025, 2, 1) -> 'févr. 2025' (chart axes)."""
    return f"{MONTHS_SHORT[d.month - 1]} {d.year}"


def typeset(text: str) -> str:
    """French spacing in prose: no line break before % ; : ? ! », after «, nor inside 2 000."""
    text = re.sub(r"(?<=\d) (?=\d{3}\b)", NNBSP, text)
    text = re.sub(r" ([%;?!])", NNBSP + r"\1", text)
    return text.replace(" :", NBSP + ":").replace("« ", "«" + NBSP).replace(" »", NBSP + "»")
