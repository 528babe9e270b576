"""Street outreach teams: people met on the street, in squats, camps and vehicles."""

import pandera.polars as pa

from synchro_dagster.sources import vocab
from synchro_dagster.sources.spec import FileKind, Source, StagedRecord


class MaraudesRecord(StagedRecord):
    situation: str = pa.Field(isin=["RUE", "SQUAT", "INCONNU"])


SOURCE = Source(
    id="maraudes",
    label="Maraudes",
    partner="Street outreach teams (Samu social, Croix-Rouge, équipe de rue)",
    description="Hand-kept table of the month's encounters: a title block above the header, "
    "'NOM Prénom' in one column, an estimated age more often than a birth date.",
    owner="team:observatoire",
    files=(FileKind("*.xlsx"), FileKind("*.xlsm"), FileKind("*.ods")),
    columns={
        "event_date": ("Date de rencontre", "Date"),
        "full_name": ("NOM Prénom", "Nom et prénom", "Nom Prénom", "Identité"),
        "last_name": ("Nom",),
        "first_name": ("Prénom",),
        "age": ("Âge (estimé)", "Âge", "Age estimé"),
        "birth_date": ("Date de naissance", "DDN"),
        "sex": ("Sexe (H/F)", "Sexe", "H/F"),
        "situation": ("Type de lieu", "Lieu de vie"),
        # a team's own reference for the person or household, when it notes one
        "household_ref": ("N° SI-SIAO", "Numéro SI-SIAO", "N° dossier", "N° usager"),
    },
    required=("event_date", "full_name|last_name", "situation"),
    values={
        "sex": vocab.SEX,
        "situation": {
            "Rue": "RUE",
            "Abri de fortune": "RUE",
            "Véhicule": "RUE",
            "Hall d'immeuble": "RUE",
            "Tente": "RUE",
            "Squat": "SQUAT",
            "Campement": "SQUAT",
            "Bidonville": "SQUAT",
            "Inconnu": "INCONNU",
        },
    },
    model=MaraudesRecord,
    situation_rank=4,
)
