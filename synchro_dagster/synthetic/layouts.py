"""What each partner's delivery looks like: file names, formats, title blocks, headers, codes.

A `Layout` is one kind of file. Cells are described by a key (filled by the
row builders in `deliveries.py`) and a kind that says how the partner writes
it: an Excel date cell, a bare Excel serial number, a dd/mm/yyyy text, an ISO
text, a number or a string.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Col:
    header: str
    key: str
    kind: str = "str"  # str | int | date (Excel date cell) | serial | text_date | iso_date


@dataclass(frozen=True)
class Layout:
    source: str
    file_name: str  # with {month} = YYYY-MM
    columns: tuple[Col, ...]
    fmt: str = "xlsx"  # xlsx | csv
    title: tuple[str, ...] = ()  # lines above the header, {label} = "janvier 2025"
    sheet: str = "Feuil1"
    decoy_sheet: str | None = None  # a summary sheet placed before the data sheet
    footer: str | None = None  # last line, {n} = number of rows
    blank_row_every_week: bool = False
    encoding: str = "cp1252"
    delimiter: str = ";"
    sex: tuple[str, str] = ("H", "F")  # how the partner writes M / F
    coded_key: str | None = None  # a coded column where an unknown code can slip in
    extra: dict[str, str] = field(default_factory=dict)


def _ident(
    date_kind: str,
    *,
    nom: str = "Nom",
    prenom: str = "Prénom",
    naissance: str = "Date de naissance",
    sexe: str = "Sexe",
) -> tuple[Col, ...]:
    return (
        Col(nom, "nom"),
        Col(prenom, "prenom"),
        Col(naissance, "naissance", date_kind),
        Col(sexe, "sexe"),
    )


SIAO_INSERTION = Layout(
    source="siao_insertion",
    file_name="export_sisiao_insertion_{month}.csv",
    fmt="csv",
    columns=(
        Col("N° demande", "rec"),
        Col("N° groupe", "ref"),
        Col("Date de la demande", "since", "text_date"),
        Col("Typologie du groupe", "compo"),
        Col("Rôle dans le groupe", "role"),
        Col("Nom", "nom"),
        Col("Prénom", "prenom"),
        Col("Nom de naissance", "nom_naissance"),
        Col("Date de naissance", "naissance", "text_date"),
        Col("Sexe", "sexe"),
        Col("Situation au regard du logement", "situation"),
        Col("Préconisation", "preco"),
        Col("Statut de la demande", "statut"),
        Col("Date de mise à jour", "date", "text_date"),
        Col("Date d'admission", "entree", "text_date"),
        Col("Date de sortie", "sortie", "text_date"),
        Col("Motif de sortie / destination", "destination"),
    ),
    sex=("Homme", "Femme"),
    coded_key="situation",
)

SIAO_URGENCE = Layout(
    source="siao_urgence",
    file_name="115_demandes_{month}.xlsx",
    title=("SI-SIAO Urgence — Extraction des demandes", "Période : {label}"),
    sheet="Demandes",
    columns=(
        Col("Date de la demande", "date", "date"),
        Col("N° ménage", "ref"),
        Col("N° demande", "rec"),
        *_ident("date"),
        Col("Composition familiale", "compo"),
        Col("Nb personnes", "nb", "int"),
        Col("Situation la nuit précédente", "situation"),
        Col("Réponse", "reponse"),
        Col("Motif de non attribution", "motif"),
        Col("Structure proposée", "structure"),
    ),
    coded_key="reponse",
)

MARAUDES = Layout(
    source="maraudes",
    file_name="maraudes_{month}.xlsx",
    title=(
        "Suivi des maraudes — Équipes mobiles de Dijon Métropole",
        "Mois de {label}",
        "Tableau tenu par les équipes — ne pas diffuser",
    ),
    sheet="Rencontres",
    decoy_sheet="Synthèse",
    columns=(
        Col("Date de rencontre", "date", "date"),
        Col("Équipe", "equipe"),
        Col("NOM Prénom", "nom_prenom"),
        Col("Âge (estimé)", "age"),
        Col("Date de naissance", "naissance", "text_date"),
        Col("Sexe (H/F)", "sexe"),
        Col("Lieu de rencontre", "lieu"),
        Col("Type de lieu", "situation"),
        Col("Enfants présents", "enfants", "int"),
        Col("Observations", "observations"),
    ),
    footer="Total rencontres du mois : {n}",
    blank_row_every_week=True,
    coded_key="situation",
)

ACCUEILS_JOUR = (
    Layout(
        source="accueils_jour",
        file_name="accueil_jour_la_passerelle_{month}.xlsx",
        title=("Accueil de jour La Passerelle", "Passages du mois : {label}"),
        columns=(
            Col("Date de passage", "date", "text_date"),
            *_ident("text_date"),
            Col("Domiciliation", "domiciliation"),
            Col("Lieu de sommeil déclaré", "situation"),
            Col("Nb personnes du ménage", "nb", "int"),
        ),
        footer="{n} passages",
        coded_key="situation",
    ),
    Layout(
        source="accueils_jour",
        file_name="accueil_jour_point_accueil_solidarite_{month}.xlsx",
        title=("POINT ACCUEIL SOLIDARITÉ — registre des passages",),
        columns=(
            Col("Date", "date", "date"),
            *_ident("text_date", nom="NOM", prenom="PRENOM", naissance="Né(e) le", sexe="H/F"),
            Col("Domicilié(e) chez nous", "domiciliation"),
            Col("Où a dormi la personne", "situation"),
            Col("Composition", "nb", "int"),
        ),
        coded_key="situation",
    ),
)

HEBERGEMENT = {
    "MISE_ABRI": Layout(
        source="hebergement",
        file_name="chu_le_renouveau_{month}.xlsx",
        title=("CHU Le Renouveau — Liste des personnes hébergées", "Période : {label}"),
        columns=(
            Col("N° dossier", "ref"),
            *_ident("date", naissance="Né(e) le"),
            Col("Lien", "role"),
            Col("Date d'entrée", "entree", "date"),
            Col("Date de sortie", "sortie", "date"),
            Col("Destination", "destination"),
        ),
        footer="Total : {n} personnes",
        coded_key="role",
        extra={"dispositif": "CHU"},
    ),
    "HOTEL": Layout(
        source="hebergement",
        file_name="plateforme_hoteliere_{month}.xlsx",
        title=("PLATEFORME HÔTELIÈRE 115 — NUITÉES", "{label}"),
        columns=(
            Col("Réf. réservation", "ref"),
            *_ident(
                "text_date",
                nom="NOM DE FAMILLE",
                prenom="PRENOM",
                naissance="DATE NAISSANCE",
                sexe="SEXE",
            ),
            Col("QUALITE", "role"),
            Col("ARRIVEE", "entree", "text_date"),
            Col("DEPART", "sortie", "text_date"),
            Col("MOTIF DEPART", "destination"),
        ),
        sex=("M", "F"),
        footer="TOTAL {n}",
        coded_key="role",
        extra={"dispositif": "Hôtel"},
    ),
    "HEB_INSERTION": Layout(
        source="hebergement",
        file_name="chrs_les_acacias_{month}.xlsx",
        title=("Association Les Acacias", "CHRS et stabilisation — présents et sortis", "{label}"),
        columns=(
            Col("Numéro de ménage", "ref"),
            Col("Nom d'usage", "nom"),
            Col("Nom de naissance", "nom_naissance"),
            Col("Prénom", "prenom"),
            Col("Date de naissance", "naissance", "serial"),
            Col("Sexe", "sexe"),
            Col("Rôle", "role"),
            Col("Dispositif", "dispositif"),
            Col("Entrée", "entree", "serial"),
            Col("Sortie", "sortie", "serial"),
            Col("Orientation à la sortie", "destination"),
        ),
        coded_key="role",
    ),
    "ASILE": Layout(
        source="hebergement",
        file_name="huda_cada_adoma_{month}.xlsx",
        title=("Hébergement des demandeurs d'asile (CADA / HUDA)", "Mois : {label}"),
        columns=(
            Col("ID famille", "ref"),
            *_ident("date", naissance="DDN", sexe="Genre"),
            Col("Position", "role"),
            Col("Dispositif", "dispositif"),
            Col("Date entrée", "entree", "date"),
            Col("Date sortie", "sortie", "date"),
            Col("Motif de sortie", "destination"),
        ),
        sex=("Masculin", "Féminin"),
        footer="Effectif total : {n}",
        coded_key="role",
    ),
}

LOGEMENT_ACCOMPAGNE = Layout(
    source="logement_accompagne",
    file_name="logement_accompagne_{month}.xlsx",
    title=("Logement accompagné et Logement d'abord — entrées, présents, sorties", "{label}"),
    columns=(
        Col("Dispositif", "dispositif"),
        Col("N° ménage", "ref"),
        *_ident("date"),
        Col("Rôle", "role"),
        Col("Date d'entrée", "entree", "date"),
        Col("Date de sortie", "sortie", "date"),
        Col("Motif de sortie", "destination"),
    ),
    coded_key="dispositif",
)

SYPLO = Layout(
    source="syplo",
    file_name="syplo_export_{month}.csv",
    fmt="csv",
    encoding="utf-8-sig",
    columns=(
        Col("numero_syplo", "ref"),
        Col("date_labellisation", "since", "iso_date"),
        Col("nom", "nom"),
        Col("prenom", "prenom"),
        Col("date_naissance", "naissance", "iso_date"),
        Col("sexe", "sexe"),
        Col("composition_menage", "compo"),
        Col("nb_personnes", "nb", "int"),
        Col("situation_actuelle", "situation"),
        Col("statut", "statut"),
        Col("date_attribution", "sortie", "iso_date"),
        Col("date_maj", "date", "iso_date"),
    ),
    sex=("M", "F"),
    coded_key="statut",
)

SNE = Layout(
    source="sne",
    file_name="sne_demandes_21_{month}.csv",
    fmt="csv",
    columns=(
        Col("NUM_UNIQUE", "ref"),
        Col("DATE_DEPOT", "since", "text_date"),
        Col("DATE_MAJ", "date", "text_date"),
        Col("NOM", "nom"),
        Col("PRENOM", "prenom"),
        Col("DATE_NAISSANCE", "naissance", "text_date"),
        Col("SEXE", "sexe"),
        Col("NB_PERSONNES", "nb", "int"),
        Col("COMPOSITION", "compo"),
        Col("SITUATION_LOGEMENT", "situation"),
        Col("ETAT_DEMANDE", "statut"),
        Col("DATE_RADIATION", "sortie", "text_date"),
        Col("MOTIF_RADIATION", "destination"),
    ),
    sex=("M", "F"),
    coded_key="situation",
)

DALO = Layout(
    source="dalo",
    file_name="dalo_commission_{month}.xlsx",
    title=("Commission de médiation DALO de la Côte-d'Or", "Suivi des recours — {label}"),
    columns=(
        Col("N° recours", "ref"),
        Col("Date de dépôt", "since", "date"),
        *_ident("date", nom="Nom du requérant"),
        Col("Composition du ménage", "compo"),
        Col("Situation", "situation"),
        Col("Date de décision", "date", "date"),
        Col("Décision", "statut"),
        Col("Date de relogement", "sortie", "date"),
    ),
    coded_key="statut",
)

# --------------------------------------------------------------------- partner codes
SIAO_SITUATION = {
    "RUE": ["20 - Sans abri / rue"],
    "MISE_ABRI": ["32 - Hébergement d'urgence", "26 - Dispositif hivernal"],
    "HOTEL": ["35 - Hôtel (115)", "34 - Hôtel (autre financement)"],
    "HEB_INSERTION": ["31 - CHRS", "33 - Stabilisation"],
    "ASILE": ["22 - CADA", "56 - HUDA"],
    "LOG_TEMP": ["51 - Intermédiation locative", "43 - Résidence sociale temporaire"],
    "INSTITUTION": [
        "27 - Sortie d'hôpital",
        "25 - Sortie de détention",
        "36 - Sortie ASE",
        "42 - Sortie d'institution",
    ],
    "SQUAT": ["52 - Squat", "54 - Bidonville"],
    "TIERS": ["29 - Hébergé par la famille", "30 - Hébergé par des tiers"],
}
SIAO_COMPOSITION = {
    "homme_seul": "10 - Homme seul",
    "femme_seule": "20 - Femme seule",
    "couple_sans_enfant": "30 - Couple sans enfant",
    "couple_avec_enfants": "40 - Couple avec enfant(s)",
    "famille_monoparentale": "50 - Femme seule avec enfant(s)",
    "famille_monoparentale_h": "60 - Homme seul avec enfant(s)",
    "groupe_adultes": "70 - Groupe d'adultes sans enfant",
    "mineur_isole": "90 - Mineur isolé",
}
SIAO_ROLE = ("Demandeur principal", "Conjoint(e)", "Enfant", "Autre membre")
URGENCE_SITUATION = {
    "RUE": "Rue",
    "SQUAT": "Squat / campement",
    "MISE_ABRI": "Hébergement d'urgence",
    "HOTEL": "Hôtel 115",
    "TIERS": "Chez un tiers",
    "INSTITUTION": "Hôpital / institution",
    "ASILE": "Structure asile",
    "HEB_INSERTION": "Structure d'insertion",
    "LOG_TEMP": "Logement temporaire",
}
COMPOSITION_LABEL = {
    "homme_seul": "Homme seul",
    "femme_seule": "Femme seule",
    "couple_sans_enfant": "Couple sans enfant",
    "couple_avec_enfants": "Couple avec enfant(s)",
    "famille_monoparentale": "Famille monoparentale",
    "groupe_adultes": "Groupe d'adultes",
    "mineur_isole": "Mineur isolé",
}
MARAUDE_PLACE = {
    "RUE": ["Rue", "Abri de fortune", "Véhicule", "Hall d'immeuble"],
    "SQUAT": ["Squat", "Campement"],
    "MISE_ABRI": ["Rue"],
    "TIERS": ["Rue"],
}
MARAUDE_SPOTS = (
    "Gare Dijon-Ville",
    "Parc de la Colombière",
    "Quai Navier",
    "Place de la République",
    "Port du canal",
    "Rue de la Liberté",
    "Zone Cap Nord",
    "Bords de l'Ouche",
    "Parking Clemenceau",
    "Chenôve centre",
)
DAY_CENTRE_SLEEP = {
    "RUE": ["Rue", "Voiture", "Dehors"],
    "SQUAT": ["Squat"],
    "TIERS": ["Hébergé chez un tiers", "Famille"],
    "MISE_ABRI": ["115 / hébergement d'urgence"],
    "HOTEL": ["Hôtel"],
    "ASILE": ["CADA / HUDA"],
    "INSTITUTION": ["Hôpital"],
    "HEB_INSERTION": ["CHRS"],
    "LOG_TEMP": ["Logement temporaire"],
}
DESTINATION = {
    "housing:social": "Logement social",
    "housing:private": "Logement privé",
    "housing:adapted": "Pension de famille",
    "housing:housing_first": "Un chez-soi d'abord",
    "deceased": "Décès",
    "left": "Départ du territoire",
    "RUE": "Rue / fin de prise en charge",
    "MISE_ABRI": "Hébergement d'urgence",
    "HOTEL": "Hôtel",
    "HEB_INSERTION": "CHRS",
    "ASILE": "CADA / HUDA",
    "LOG_TEMP": "Intermédiation locative (IML)",
    "INSTITUTION": "Hospitalisation",
    "SQUAT": "Squat",
    "TIERS": "Hébergé chez un tiers",
}
HEB_ROLE = {
    "MISE_ABRI": ("Chef de famille", "Conjoint", "Enfant"),
    "HOTEL": ("Demandeur", "Conjoint", "Enfant"),
    "HEB_INSERTION": ("Chef de ménage", "Conjoint(e)", "Enfant"),
    "ASILE": ("Principal", "Conjoint", "Enfant"),
}
SYPLO_SITUATION = {
    "RUE": "Sans abri",
    "MISE_ABRI": "Hébergement d'urgence",
    "HOTEL": "Hôtel",
    "HEB_INSERTION": "Structure d'insertion (CHRS)",
    "LOG_TEMP": "Logement temporaire / IML",
    "TIERS": "Hébergé chez un tiers",
    "SQUAT": "Squat",
    "INSTITUTION": "Sortie d'institution",
    "ASILE": "Hébergement demandeur d'asile",
}
SNE_SITUATION = {
    "RUE": "SD",
    "SQUAT": "SQUAT",
    "HOTEL": "HOT",
    "MISE_ABRI": "SH",
    "HEB_INSERTION": "SH",
    "ASILE": "SH",
    "LOG_TEMP": "RS",
    "INSTITUTION": "SH",
    "TIERS": "CPE",
}
SNE_COMPOSITION = {
    "homme_seul": "PS",
    "femme_seule": "PS",
    "couple_sans_enfant": "C",
    "couple_avec_enfants": "CE",
    "famille_monoparentale": "FM",
    "groupe_adultes": "GA",
}


# the column a street service adds when it notes its own reference (params.street_references)
REFERENCE_COLUMN = {"maraudes": Col("N° SI-SIAO", "ref"), "accueils_jour": Col("N° usager", "ref")}


def with_reference(layout: Layout) -> Layout:
    """The layout with its service's reference column last."""
    return replace(layout, columns=(*layout.columns, REFERENCE_COLUMN[layout.source]))
