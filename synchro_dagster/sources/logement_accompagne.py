"""Adapted housing and Housing First: IML, pensions de famille, résidences sociales, UCSA."""

import pandera.polars as pa

from synchro_dagster.sources import vocab
from synchro_dagster.sources.spec import FileKind, Source, StagedRecord


class LogementAccompagneRecord(StagedRecord):
    programme: str = pa.Field(
        isin=["IML", "PENSION_DE_FAMILLE", "RESIDENCE_SOCIALE", "UN_CHEZ_SOI_DABORD"]
    )
    situation: str = pa.Field(isin=["LOG_TEMP", "LOGE"])


SOURCE = Source(
    id="logement_accompagne",
    label="Logement accompagné et Logement d'abord",
    partner="Adapted housing operators and the Housing First programme",
    description="Entries, present households and exits of IML sublets, pensions de famille, "
    "résidences sociales and Un chez-soi d'abord.",
    owner="team:observatoire",
    files=(FileKind("*.xlsx"), FileKind("*.xlsm"), FileKind("*.ods")),
    columns={
        "programme": ("Dispositif",),
        "household_ref": ("N° ménage", "Numéro de ménage"),
        **vocab.NAME_COLUMNS,
        "role": ("Rôle", "Lien"),
        "entry_date": ("Date d'entrée", "Entrée"),
        "exit_date": ("Date de sortie", "Sortie"),
        "destination": ("Motif de sortie", "Destination"),
    },
    required=("programme", "household_ref", "last_name", "first_name", "entry_date"),
    values={
        "sex": vocab.SEX,
        "role": vocab.ROLE_LABELS,
        "programme": vocab.PROGRAMME_LABELS,
        "destination": vocab.DESTINATION_LABELS,
    },
    model=LogementAccompagneRecord,
    period="exit_date",
    evidence=("exit_date", "month_end"),
    situation_rank=1,
)
