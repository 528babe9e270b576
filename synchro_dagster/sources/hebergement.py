"""Shelter and hotel providers: who occupied a place in the month, entries, exits and where to."""

from datetime import date

import pandera.polars as pa

from synchro_dagster.sources import vocab
from synchro_dagster.sources.spec import FileKind, Source, StagedRecord


class HebergementRecord(StagedRecord):
    situation: str = pa.Field(isin=["MISE_ABRI", "HOTEL", "HEB_INSERTION", "ASILE"])
    household_token: str = pa.Field(nullable=False)
    entry_date: date = pa.Field(nullable=False)


SOURCE = Source(
    id="hebergement",
    label="Hébergement (CHU, hôtel, CHRS, CADA/HUDA)",
    partner="Shelter and hotel providers (CHU, plateforme hôtelière, CHRS, CADA/HUDA)",
    description="One workbook per provider, each with its own headers: occupants of the month "
    "with entry date, and exits with their destination.",
    owner="team:observatoire",
    files=(
        FileKind("chu_*", {"situation": "MISE_ABRI", "programme": "CHU"}),
        FileKind("plateforme_hoteliere_*", {"situation": "HOTEL", "programme": "HOTEL"}),
        FileKind("chrs_*", {"situation": "HEB_INSERTION"}),
        FileKind("huda_*", {"situation": "ASILE"}),
        FileKind("cada_*", {"situation": "ASILE"}),
    ),
    columns={
        "household_ref": ("N° dossier", "Réf. réservation", "Numéro de ménage", "ID famille"),
        **vocab.NAME_COLUMNS,
        "role": ("Lien", "QUALITE", "Rôle", "Position"),
        "programme": ("Dispositif",),
        "entry_date": ("Date d'entrée", "ARRIVEE", "Entrée", "Date entrée"),
        "exit_date": ("Date de sortie", "DEPART", "Sortie", "Date sortie"),
        "destination": (
            "Destination",
            "MOTIF DEPART",
            "Orientation à la sortie",
            "Motif de sortie",
        ),
    },
    required=("household_ref", "last_name", "first_name", "entry_date"),
    values={
        "sex": vocab.SEX,
        "role": vocab.ROLE_LABELS,
        "programme": vocab.PROGRAMME_LABELS,
        "destination": vocab.DESTINATION_LABELS,
    },
    model=HebergementRecord,
    period="exit_date",
    evidence=("exit_date", "month_end"),
    situation_rank=1,
    lists_person_once=True,
)
