"""Partner vocabularies shared by several sources: the words French partner tools use."""

SEX = {
    "H": "M",
    "M": "M",
    "Homme": "M",
    "Masculin": "M",
    "1": "M",
    "F": "F",
    "Femme": "F",
    "Féminin": "F",
    "2": "F",
}

COMPOSITION_LABELS = {
    "Homme seul": "homme_seul",
    "Femme seule": "femme_seule",
    "Couple sans enfant": "couple_sans_enfant",
    "Couple avec enfant(s)": "couple_avec_enfants",
    "Couple avec enfants": "couple_avec_enfants",
    "Famille monoparentale": "famille_monoparentale",
    "Groupe d'adultes": "groupe_adultes",
    "Mineur isolé": "mineur_isole",
    "Personne seule": "personne_seule",
}

DESTINATION_LABELS = {
    "Logement social": "housing_social",
    "Logement privé": "housing_private",
    "Pension de famille": "housing_adapted",
    "Maison relais": "housing_adapted",
    "Résidence sociale": "housing_adapted",
    "Un chez-soi d'abord": "housing_first",
    "Logement d'abord": "housing_first",
    "Décès": "deceased",
    "Départ du territoire": "left_territory",
    "Départ du département": "left_territory",
    "Rue / fin de prise en charge": "RUE",
    "Rue": "RUE",
    "Hébergement d'urgence": "MISE_ABRI",
    "Hôtel": "HOTEL",
    "CHRS": "HEB_INSERTION",
    "CADA / HUDA": "ASILE",
    "Intermédiation locative (IML)": "LOG_TEMP",
    "Hospitalisation": "INSTITUTION",
    "Squat": "SQUAT",
    "Hébergé chez un tiers": "TIERS",
    "Inconnue": "INCONNU",
    "Fin de prise en charge": "INCONNU",
}

ROLE_LABELS = {
    "Demandeur principal": "principal",
    "Demandeur": "principal",
    "Chef de famille": "principal",
    "Chef de ménage": "principal",
    "Principal": "principal",
    "Titulaire": "principal",
    "Conjoint": "conjoint",
    "Conjoint(e)": "conjoint",
    "Conjointe": "conjoint",
    "Co-titulaire": "conjoint",
    "Enfant": "enfant",
    "Autre membre": "autre",
    "Autre": "autre",
}

PROGRAMME_LABELS = {
    "CHU": "CHU",
    "Hôtel": "HOTEL",
    "CHRS": "CHRS",
    "Stabilisation": "STABILISATION",
    "CADA": "CADA",
    "HUDA": "HUDA",
    "IML": "IML",
    "Intermédiation locative": "IML",
    "Pension de famille": "PENSION_DE_FAMILLE",
    "Maison relais": "PENSION_DE_FAMILLE",
    "Résidence sociale": "RESIDENCE_SOCIALE",
    "Un chez-soi d'abord": "UN_CHEZ_SOI_DABORD",
}

NAME_COLUMNS = {
    "last_name": ("Nom", "Nom d'usage", "NOM DE FAMILLE", "Nom de famille", "Nom du requérant"),
    "first_name": ("Prénom", "Prénoms"),
    "birth_name": ("Nom de naissance", "Nom de jeune fille"),
    "birth_date": (
        "Date de naissance",
        "Né(e) le",
        "Née le",
        "Né le",
        "DDN",
        "Date naissance",
        "date_naissance",
    ),
    "sex": ("Sexe", "Genre", "H/F", "Sexe (H/F)"),
}

# how the Prefecture's and the DALO commission's forms word a housing situation
HOUSING_SITUATION_LABELS = {
    "Sans abri": "RUE",
    "Hébergement d'urgence": "MISE_ABRI",
    "Hôtel": "HOTEL",
    "Structure d'insertion (CHRS)": "HEB_INSERTION",
    "Logement temporaire / IML": "LOG_TEMP",
    "Hébergé chez un tiers": "TIERS",
    "Squat": "SQUAT",
    "Sortie d'institution": "INSTITUTION",
    "Hébergement demandeur d'asile": "ASILE",
}
