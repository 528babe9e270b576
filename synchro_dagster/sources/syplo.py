"""SYPLO (Prefecture): households labelled priority for the prefectoral housing quota."""

import pandera.polars as pa

from synchro_dagster.sources import vocab
from synchro_dagster.sources.spec import FileKind, Source, StagedRecord


class SyploRecord(StagedRecord):
    need_type: str = pa.Field(isin=["syplo"])
    role: str = pa.Field(isin=["principal"], nullable=True)


SOURCE = Source(
    id="syplo",
    label="Contingent préfectoral (SYPLO)",
    partner="Prefecture — SYPLO (contingent préfectoral)",
    description="Labelled priority households and their allocation; one row per household "
    "(the applicant), ISO dates, UTF-8.",
    owner="team:observatoire",
    files=(FileKind("*.csv"),),
    columns={
        "household_ref": ("numero_syplo", "N° SYPLO"),
        "need_since": ("date_labellisation",),
        "last_name": ("nom",),
        "first_name": ("prenom",),
        "birth_date": ("date_naissance",),
        "sex": ("sexe",),
        "composition": ("composition_menage",),
        "household_size": ("nb_personnes",),
        "situation": ("situation_actuelle",),
        "status": ("statut",),
        "exit_date": ("date_attribution",),
        "event_date": ("date_maj",),
    },
    required=("household_ref", "last_name", "first_name", "status", "event_date"),
    values={
        "sex": vocab.SEX,
        "composition": vocab.COMPOSITION_LABELS,
        "situation": vocab.HOUSING_SITUATION_LABELS,
        "status": {
            "Labellisé": "open",
            "Proposition en cours": "open",
            "Relogé": "answered",
            "Radié": "closed",
        },
    },
    model=SyploRecord,
    need_type="syplo",
    evidence=("exit_date", "event_date"),
    situation_rank=5,
    lists_person_once=True,
    exit_destination="housing_social",  # an allocation date means a social let
)
