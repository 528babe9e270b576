"""115 emergency line (SI-SIAO urgence): shelter requests, fulfilled or not, one row per person."""

import pandera.polars as pa

from synchro_dagster.sources import vocab
from synchro_dagster.sources.spec import FileKind, Source, StagedRecord


class SiaoUrgenceRecord(StagedRecord):
    need_type: str = pa.Field(isin=["urgence"])
    request_fulfilled: bool = pa.Field(nullable=False)


SOURCE = Source(
    id="siao_urgence",
    label="115 (SI-SIAO urgence)",
    partner="115 emergency line — SI-SIAO urgence module",
    description="Every shelter request of the month to the 115 and its answer ('demandes non "
    "pourvues' included); one row per person per request.",
    owner="team:observatoire",
    files=(FileKind("*.xlsx"), FileKind("*.xlsm"), FileKind("*.ods"), FileKind("*.csv")),
    columns={
        "event_date": ("Date de la demande", "Date demande", "Date d'appel"),
        "household_ref": ("N° ménage", "N° fiche", "Numéro ménage"),
        "record_ref": ("N° demande", "Numéro de demande"),
        **vocab.NAME_COLUMNS,
        "composition": ("Composition familiale", "Composition"),
        "household_size": ("Nb personnes", "Nombre de personnes"),
        "situation": ("Situation la nuit précédente", "Lieu de la nuit précédente"),
        "response": ("Réponse", "Réponse apportée"),
    },
    required=("event_date", "last_name", "first_name", "response"),
    values={
        "sex": vocab.SEX,
        "composition": vocab.COMPOSITION_LABELS,
        "situation": {
            "Rue": "RUE",
            "Squat / campement": "SQUAT",
            "Squat": "SQUAT",
            "Hébergement d'urgence": "MISE_ABRI",
            "Hôtel 115": "HOTEL",
            "Hôtel": "HOTEL",
            "Chez un tiers": "TIERS",
            "Hôpital / institution": "INSTITUTION",
            "Structure asile": "ASILE",
            "Structure d'insertion": "HEB_INSERTION",
            "Logement temporaire": "LOG_TEMP",
            "Inconnu": "INCONNU",
        },
        "response": {"Pourvue": "fulfilled", "Non pourvue": "not_fulfilled"},
    },
    model=SiaoUrgenceRecord,
    need_type="urgence",
    situation_rank=3,
)
