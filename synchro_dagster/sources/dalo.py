"""DALO mediation commission: recourses, decisions and rehousing."""

import pandera.polars as pa

from synchro_dagster.sources import vocab
from synchro_dagster.sources.spec import FileKind, Source, StagedRecord


class DaloRecord(StagedRecord):
    need_type: str = pa.Field(isin=["dalo"])


SOURCE = Source(
    id="dalo",
    label="Commission de médiation DALO",
    partner="Commission de médiation DALO (Côte-d'Or)",
    description="Open recourses of the month with the commission's decision and the rehousing "
    "date; one row per recourse (the applicant).",
    owner="team:observatoire",
    files=(FileKind("*.xlsx"), FileKind("*.xlsm"), FileKind("*.ods")),
    columns={
        "household_ref": ("N° recours", "Numéro de recours"),
        "need_since": ("Date de dépôt",),
        **vocab.NAME_COLUMNS,
        "composition": ("Composition du ménage",),
        "situation": ("Situation",),
        "event_date": ("Date de décision",),
        "status": ("Décision",),
        "exit_date": ("Date de relogement",),
    },
    required=("household_ref", "last_name", "first_name", "need_since", "status"),
    values={
        "sex": vocab.SEX,
        "composition": vocab.COMPOSITION_LABELS,
        "situation": vocab.HOUSING_SITUATION_LABELS,
        "status": {
            "Favorable prioritaire et urgent": "recognised",
            "Rejet": "rejected",
            "En instruction": "open",
            "Sans objet": "closed",
        },
    },
    model=DaloRecord,
    need_type="dalo",
    period=None,
    evidence=("exit_date", "event_date", "need_since"),
    situation_rank=5,
    lists_person_once=True,
    exit_destination="housing_social",  # an allocation date means a social let
)
