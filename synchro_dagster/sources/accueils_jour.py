"""Day centres: visits, postal domiciliation and the sleeping place people declare."""

from synchro_dagster.sources import vocab
from synchro_dagster.sources.spec import FileKind, Source, StagedRecord

SOURCE = Source(
    id="accueils_jour",
    label="Accueils de jour",
    partner="Day centres (La Passerelle, Point Accueil Solidarité)",
    description="One row per visit; each centre keeps its own workbook, several files a month.",
    owner="team:observatoire",
    files=(FileKind("*.xlsx"), FileKind("*.xlsm"), FileKind("*.ods")),
    columns={
        "event_date": ("Date de passage", "Date"),
        **vocab.NAME_COLUMNS,
        "situation": ("Lieu de sommeil déclaré", "Où a dormi la personne", "Lieu de sommeil"),
        "household_size": ("Nb personnes du ménage", "Composition", "Nombre de personnes"),
        # the centre's own reference (member card, domiciliation file), when it keeps one
        "household_ref": ("N° usager", "N° adhérent", "N° dossier", "N° domiciliation"),
    },
    required=("event_date", "last_name", "first_name", "situation"),
    values={
        "sex": vocab.SEX,
        "situation": {
            "Rue": "RUE",
            "Voiture": "RUE",
            "Dehors": "RUE",
            "Squat": "SQUAT",
            "Hébergé chez un tiers": "TIERS",
            "Famille": "TIERS",
            "115 / hébergement d'urgence": "MISE_ABRI",
            "Hôtel": "HOTEL",
            "CADA / HUDA": "ASILE",
            "Hôpital": "INSTITUTION",
            "CHRS": "HEB_INSERTION",
            "Logement temporaire": "LOG_TEMP",
            "Ne sait pas": "INCONNU",
        },
    },
    model=StagedRecord,
    situation_rank=6,
)
