"""SNE: social housing applicants currently without a home, and allocations (RADATT)."""

import pandera.polars as pa

from synchro_dagster.sources import vocab
from synchro_dagster.sources.spec import FileKind, Source, StagedRecord


class SneRecord(StagedRecord):
    need_type: str = pa.Field(isin=["sne"])


SOURCE = Source(
    id="sne",
    label="Demande de logement social (SNE)",
    partner="Système national d'enregistrement de la demande de logement social (SNE)",
    description="Active demands of applicants without a home (SD, SQUAT, HOT, SH, CP…) and the "
    "month's radiations; one row per demand (the applicant).",
    owner="team:observatoire",
    files=(FileKind("*.csv"),),
    columns={
        "household_ref": ("NUM_UNIQUE", "Numéro unique"),
        "need_since": ("DATE_DEPOT",),
        "event_date": ("DATE_MAJ", "DATE_RENOUVELLEMENT"),
        "last_name": ("NOM",),
        "first_name": ("PRENOM",),
        "birth_date": ("DATE_NAISSANCE",),
        "sex": ("SEXE",),
        "household_size": ("NB_PERSONNES",),
        "composition": ("COMPOSITION",),
        "situation": ("SITUATION_LOGEMENT",),
        "status": ("ETAT_DEMANDE",),
        "exit_date": ("DATE_RADIATION",),
        "destination": ("MOTIF_RADIATION",),
    },
    required=("household_ref", "last_name", "first_name", "situation", "status", "event_date"),
    values={
        "sex": vocab.SEX,
        "composition": {
            "PS": "personne_seule",
            "C": "couple_sans_enfant",
            "CE": "couple_avec_enfants",
            "FM": "famille_monoparentale",
            "GA": "groupe_adultes",
        },
        "situation": {
            "SD": "RUE",
            "SQUAT": "SQUAT",
            "CAMCAR": "SQUAT",
            "HOT": "HOTEL",
            "SH": "HEB_INSERTION",
            "RS": "LOG_TEMP",
            "CP": "TIERS",
            "CPE": "TIERS",
        },
        "status": {"ACTIVE": "open", "RADIEE": "closed"},
        "destination": {"RADATT": "housing_social", "RADNR": "INCONNU", "RADABAN": "INCONNU"},
    },
    model=SneRecord,
    need_type="sne",
    evidence=("exit_date", "event_date"),
    reader={"delimiter": ";", "encoding": "cp1252"},
    situation_rank=5,
    lists_person_once=True,
    # "SH" (in a shelter) is read as insertion accommodation (DOMAIN §3) unless another source
    # said earlier in the window which kind of shelter
    broad_situations={"HEB_INSERTION": ("MISE_ABRI", "HEB_INSERTION", "ASILE", "INSTITUTION")},
)
