"""SI-SIAO insertion: requests for insertion shelter and adapted housing, one row per person."""

from datetime import date

import pandera.polars as pa

from synchro_dagster.sources import vocab
from synchro_dagster.sources.spec import FileKind, Source, StagedRecord


class SiaoInsertionRecord(StagedRecord):
    need_type: str = pa.Field(isin=["insertion"])
    need_status: str = pa.Field(isin=["open", "answered", "closed"])
    situation: str = pa.Field(nullable=False)
    household_token: str = pa.Field(nullable=False)
    need_since: date = pa.Field(nullable=True)


SOURCE = Source(
    id="siao_insertion",
    label="SIAO insertion (SI-SIAO)",
    partner="SIAO — SI-SIAO national tool, insertion module",
    description="Open insertion requests of the month: orientation, admission, exit; one row per "
    "person of the request's group (fiche groupe).",
    owner="team:observatoire",
    files=(FileKind("*.csv"),),
    columns={
        "record_ref": ("N° demande", "Numéro de demande", "Id demande"),
        "household_ref": ("N° groupe", "Numéro de groupe", "Id groupe"),
        "need_since": ("Date de la demande", "Date demande"),
        "composition": ("Typologie du groupe", "Typologie"),
        "role": ("Rôle dans le groupe", "Rôle"),
        **vocab.NAME_COLUMNS,
        "situation": ("Situation au regard du logement", "Situation logement"),
        "status": ("Statut de la demande", "Statut"),
        "event_date": ("Date de mise à jour", "Date MAJ"),
        "entry_date": ("Date d'admission",),
        "exit_date": ("Date de sortie",),
        "destination": ("Motif de sortie / destination", "Destination"),
    },
    required=(
        "household_ref",
        "last_name",
        "first_name",
        "birth_date",
        "situation",
        "status",
        "event_date",
    ),
    values={
        "sex": vocab.SEX,
        "role": vocab.ROLE_LABELS,
        # SI-SIAO codes ("20 - Sans abri / rue"): the number is enough
        "situation": {
            "20": "RUE",
            "32": "MISE_ABRI",
            "26": "MISE_ABRI",
            "35": "HOTEL",
            "34": "HOTEL",
            "31": "HEB_INSERTION",
            "33": "HEB_INSERTION",
            "22": "ASILE",
            "56": "ASILE",
            "51": "LOG_TEMP",
            "43": "LOG_TEMP",
            "27": "INSTITUTION",
            "25": "INSTITUTION",
            "36": "INSTITUTION",
            "42": "INSTITUTION",
            "52": "SQUAT",
            "54": "SQUAT",
            "29": "TIERS",
            "30": "TIERS",
        },
        "composition": {
            "10": "homme_seul",
            "20": "femme_seule",
            "30": "couple_sans_enfant",
            "40": "couple_avec_enfants",
            "50": "famille_monoparentale",
            "60": "famille_monoparentale",
            "70": "groupe_adultes",
            "80": "groupe_adultes",
            "90": "mineur_isole",
            "100": "mineur_isole",
            "110": "femme_seule",
            "120": "groupe_adultes",
        },
        "status": {
            "En attente": "open",
            "Orientée": "open",
            "Admise": "answered",
            "Sortie": "closed",
            "Clôturée": "closed",
            "Annulée": "closed",
        },
        "destination": vocab.DESTINATION_LABELS,
    },
    model=SiaoInsertionRecord,
    need_type="insertion",
    evidence=("exit_date", "event_date"),
    reader={"delimiter": ";", "encoding": "cp1252"},
    example_headers=(
        "N° demande",
        "N° groupe",
        "Date de la demande",
        "Typologie du groupe",
        "Rôle dans le groupe",
        "Nom",
        "Prénom",
        "Nom de naissance",
        "Date de naissance",
        "Sexe",
        "Situation au regard du logement",
        "Statut de la demande",
        "Date de mise à jour",
        "Date de sortie",
    ),
    situation_rank=2,
    lists_person_once=True,
)
