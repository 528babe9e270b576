"""Problems with a partner's delivery, in words the partner can act on.

A `FileRejected` stops the whole source-month (nothing of it is staged; the refusal is
recorded in `lineage.refusals`); a row problem sends one row to quarantine with a reason code.
Neither ever carries a cell value: only file names, column headers, rules and row numbers.
The exception speaks English to the data engineer; `FILE_PROBLEMS` and `ROW_REASONS` say the
same to the partner, in French.
"""

from __future__ import annotations

from pathlib import Path


class FileRejected(Exception):
    """A delivery that cannot be ingested as it is."""

    def __init__(
        self,
        file: Path | str,
        problem: str,
        detail: str,
        fix: str,
        column: str | None = None,
        reason: str | None = None,
    ):
        self.path = Path(file)  # where it lies, for the refusal's record; never in the message
        self.file = self.path.name
        self.problem = problem
        self.column = column
        self.reason = reason  # too_many_rejected_rows: the most frequent row reason (ROW_REASONS)
        self.detail = detail
        self.fix = fix
        where = f"{self.file}" + (f", column « {column} »" if column else "")
        super().__init__(f"{where}: {detail} [{problem}]. What to do: {fix}")


# What a partner reads about each problem, in French (the partner feedback, publish/feedback.py).
# file problem code -> (what is wrong, what to do); {column} is the expected column title
FILE_PROBLEMS = {
    "empty_file": (
        "le fichier est vide (0 octet)",
        "exportez de nouveau le fichier et vérifiez qu'il s'ouvre avant de l'envoyer",
    ),
    "unsupported_format": (
        "ce type de fichier n'est pas lu",
        "envoyez l'export au format .xlsx, .ods ou .csv",
    ),
    "not_a_csv": (
        "le fichier est un classeur enregistré sous un nom en .csv",
        "exportez-le de nouveau en CSV, ou envoyez-le avec sa vraie extension .xlsx",
    ),
    "unreadable": (
        "le fichier ne peut pas être ouvert ou lu (fichier abîmé, tronqué, ou guillemet non "
        "fermé dans un CSV)",
        "ouvrez-le dans Excel ou LibreOffice, enregistrez-le de nouveau et renvoyez-le",
    ),
    "password_protected": (
        "le classeur est protégé par un mot de passe (ou chiffré)",
        "retirez le mot de passe (Fichier > Informations > Protéger le classeur) et renvoyez-le",
    ),
    "no_header": (
        "aucune ligne d'en-tête avec les titres de colonnes attendus n'a été trouvée",
        "gardez les titres de colonnes de l'export habituel",
    ),
    "missing_column": (
        "la colonne obligatoire « {column} » est absente",
        "remettez la colonne avec son titre habituel « {column} »",
    ),
    "no_data_rows": (
        "le fichier a un en-tête mais aucune ligne de données",
        "vérifiez que le bon mois a été exporté et que la feuille est remplie",
    ),
    "truncated": (
        "le fichier s'arrête au milieu d'une ligne : il a été coupé pendant la copie ou l'export",
        "exportez de nouveau le fichier entier et vérifiez sa dernière ligne avant de l'envoyer",
    ),
    "cell_too_large": (
        "une cellule contient à elle seule un texte immense (plus de 131 072 caractères)",
        "vérifiez la ligne indiquée (un guillemet mal placé peut fondre des lignes en une "
        "cellule), exportez de nouveau et renvoyez le fichier",
    ),
    "sheet_too_large": (
        "la feuille s'étend bien au-delà de ses données (une cellule isolée très loin, par "
        "exemple en XFD1048576)",
        "supprimez les lignes et colonnes après les données (Ctrl+Fin montre la dernière "
        "cellule), enregistrez et renvoyez le classeur",
    ),
    "formulas_without_values": (
        "des cellules contiennent des formules dont le résultat n'a jamais été calculé (fichier "
        "produit par un programme, jamais ouvert dans un tableur)",
        "ouvrez le classeur dans Excel ou LibreOffice, enregistrez-le, puis renvoyez-le (ou "
        "exportez les valeurs plutôt que les formules)",
    ),
    "several_data_sheets": (
        "les lignes sont réparties sur plusieurs feuilles du classeur",
        "rassemblez toutes les lignes du mois sur une seule feuille et renvoyez le classeur",
    ),
    "not_a_file": (
        "c'est un dossier portant un nom de fichier, pas un fichier",
        "déposez le fichier lui-même dans le dossier du mois, pas un dossier",
    ),
    "outside_landing": (
        "c'est un lien vers un fichier ou un dossier hors du dépôt ; il n'est pas lu",
        "déposez une copie du fichier lui-même dans le dossier du mois",
    ),
    "unknown_file_kind": (
        "le nom du fichier ne dit pas de quel type de liste il s'agit",
        "gardez le nom de fichier habituel de l'export (il indique le dispositif)",
    ),
    "duplicate_rows": (
        "de nombreuses lignes répètent exactement une autre ligne de l'envoi (export lancé deux "
        "fois, ou deux versions d'un même fichier déposées ensemble)",
        "renvoyez chaque ligne une seule fois ; si un fichier corrigé remplace un ancien, "
        "retirez l'ancien du dossier",
    ),
    "too_many_rejected_rows": (
        "trop de lignes sont inutilisables pour que l'envoi soit intégré ; la raison la plus "
        "fréquente : {reason} ; l'envoi précédent reste en vigueur",
        "{fix} sur l'ensemble du fichier, puis renvoyez-le en entier",
    ),
    "month_first_dates": (
        "les dates de la colonne « {column} » sont écrites mois/jour/année (à l'américaine)",
        "écrivez les dates jour/mois/année (jj/mm/aaaa) et renvoyez le fichier",
    ),
    "wrong_month": (
        "les dates des lignes tombent pour la plupart dans un autre mois que celui de l'envoi",
        "envoyez l'extraction du mois demandé, ou déposez ce fichier dans le dossier du mois de "
        "ses dates",
    ),
}

# row reason code (before any ":<field>") -> (what is wrong, what to do); {column} is the
# partner's column concerned
ROW_REASONS = {
    "no_identity": (
        "ni nom ni prénom",
        "complétez le nom ou le prénom de la personne",
    ),
    "unparseable_date": (
        "la date de la colonne « {column} » n'est pas une date du calendrier (par exemple "
        "31/02) ou n'est pas dans un format reconnu",
        "corrigez la date (jj/mm/aaaa)",
    ),
    "implausible_date": (
        "la date de naissance de la colonne « {column} » est postérieure à la date de "
        "l'événement, dans le futur, ou il y a plus de 110 ans",
        "corrigez la date de naissance, ou laissez-la vide si elle n'est pas connue",
    ),
    "implausible_age": (
        "l'âge de la colonne « {column} » n'est pas un âge possible (moins de 0 ou plus de 110 "
        "ans)",
        "corrigez l'âge, ou laissez-le vide s'il n'est pas connu",
    ),
    "formula": (
        "la colonne « {column} » contient une formule de tableur (texte commençant par =, +, - "
        "ou @) au lieu d'une valeur",
        "remplacez la formule par la valeur elle-même (copier, puis collage spécial valeurs)",
    ),
    "too_long": (
        "la colonne « {column} » contient un texte bien trop long pour cette information (plus "
        "de 100 caractères)",
        "vérifiez la cellule : un texte collé par erreur ou des colonnes fusionnées",
    ),
    "date_after_month": (
        "la date de la colonne « {column} » est postérieure à la fin du mois envoyé",
        "corrigez la date, ou envoyez la ligne avec le mois suivant",
    ),
    "missing_date": (
        "aucune date ne permet de situer la ligne dans le temps",
        "renseignez la date de l'événement",
    ),
    "unknown_code": (
        "le code ou libellé de la colonne « {column} » n'est pas l'un de ceux que la source "
        "emploie d'habitude",
        "employez un code ou un libellé de votre nomenclature habituelle",
    ),
    "unparseable_number": (
        "la colonne « {column} » n'est pas un nombre",
        "écrivez un nombre en chiffres (par exemple 2)",
    ),
    "rule": (
        "la colonne « {column} » doit être {rule}",
        "corrigez la valeur",
    ),
}
# a source model's column check ("rule:<column>:<check>(<arg>)") -> what the column must be
COLUMN_RULES = {
    "less_than_or_equal_to": "au plus {arg}",
    "greater_than_or_equal_to": "au moins {arg}",
    "in_range": "dans les bornes admises ({arg})",
    "isin": "l'une des valeurs admises pour cette source",
    "not_nullable": "renseignée pour cette source",
}
COLUMN_RULE_OTHERWISE = "conforme aux règles de la source"
# a source model's row check ("rule:row:<check>") -> (what is wrong, what to do)
ROW_RULES = {
    "exit_after_entry": (
        "la date de sortie précède la date d'entrée",
        "corrigez l'une des deux dates",
    ),
    "identity_present": ROW_REASONS["no_identity"],
}
ROW_RULE_OTHERWISE = ("la ligne ne respecte pas une règle de la source", "corrigez la ligne")
