"""Problems with a partner's delivery, in words the partner can act on.

A `FileRejected` stops the whole source-month (nothing of it is written); a
row problem sends one row to quarantine with a reason code. Neither ever
carries a cell value: only file names, column headers, rules and row numbers.
"""

from __future__ import annotations

from pathlib import Path


class FileRejected(Exception):
    """A delivery that cannot be ingested as it is."""

    def __init__(
        self, file: Path | str, problem: str, detail: str, fix: str, column: str | None = None
    ):
        self.file = Path(file).name
        self.problem = problem
        self.column = column
        self.detail = detail
        self.fix = fix
        where = f"{self.file}" + (f", column « {column} »" if column else "")
        super().__init__(f"{where}: {detail} [{problem}]. What to do: {fix}")


# row-level reason codes; "<code>:<field>" names the canonical field concerned
ROW_REASONS = {
    "no_identity": "neither a last name nor a first name",
    "unparseable_date": "a date that is not a calendar date (e.g. 31/02) or not in a known format",
    "implausible_date": "a birth date in the future or more than 110 years ago",
    "date_after_month": "an event dated after the end of the delivered month",
    "missing_date": "no date to place the row in time",
    "unknown_code": "a code or label that the source's mapping does not know",
    "unparseable_number": "a number that cannot be read",
    "rule": "a value that breaks a rule of the staged record (see the Pandera model)",
}
