"""The GDPR texts generated from the source modules and the settings, so that they stay true
when a partner is added or a duration changes: the entry of the *registre des traitements*
(art. 30) and the information notice for the persons concerned (art. 13 and 14). `synchro docs`
writes them to docs/registre.md and docs/notice.md (with the defaults; `--data-dir` for a
deployment's own settings).
"""

from __future__ import annotations

from synchro_dagster.identity.tokens import INPUT_SCHEMA
from synchro_dagster.settings import Settings
from synchro_dagster.sources import all_sources
from synchro_dagster.sources.spec import FIELDS, Source

# what each canonical field is, for a person reading the notice
FIELD_LABELS = {
    "record_ref": "numéro de dossier chez le partenaire",
    "household_ref": "numéro de ménage ou de groupe chez le partenaire",
    "last_name": "nom",
    "first_name": "prénom",
    "birth_name": "nom de naissance",
    "full_name": "nom et prénom",
    "age": "âge (gardé en tranche d'âge)",
    "birth_date": "date de naissance",
    "event_date": "date du contact, de la demande ou de la présence",
    "need_since": "date d'ouverture de la demande",
    "entry_date": "date d'entrée dans un hébergement ou un logement",
    "exit_date": "date de sortie",
    "household_size": "nombre de personnes du ménage",
    "sex": "sexe",
    "role": "place dans le ménage (demandeur, conjoint, enfant)",
    "composition": "composition du ménage",
    "situation": "situation au regard du logement",
    "status": "état de la demande",
    "response": "réponse donnée par le 115",
    "programme": "dispositif d'hébergement ou de logement",
    "destination": "destination à la sortie",
}
# replaced by keyed tokens on arrival: never kept in clear (the birth date also gives an age
# band): the partner fields ingestion tokenises, and the full name it splits into them first
PSEUDONYMISED = (set(INPUT_SCHEMA) & set(FIELDS)) | {"full_name"}
CONTROLLERS = (
    "le SIAO du territoire, avec les signataires de la convention Synchrø (la collectivité et "
    "les services de l'État — DDETS), responsables conjoints du traitement"
)
PURPOSE = (
    "Observer chaque mois, de façon exhaustive et dynamique, les ménages sans domicile du "
    "territoire, leurs besoins et les réponses apportées, pour piloter la politique du "
    "Logement d'abord. Finalité d'observation uniquement : aucune décision concernant une "
    "personne ou un ménage n'est prise à partir de ce traitement."
)
LEGAL_BASIS = (
    "Exécution d'une mission d'intérêt public (article 6.1.e du RGPD), confiée au SIAO par "
    "le code de l'action sociale et des familles (article L. 345-2-4 : missions du SIAO, dont "
    "l'observation sociale)."
)


def _fields(source: Source) -> tuple[list[str], list[str]]:
    """The source's fields: (pseudonymised on arrival, kept as codes or dates)."""
    fields = [f for f in FIELDS if f in source.columns]
    return (
        [FIELD_LABELS[f] for f in fields if f in PSEUDONYMISED],
        [FIELD_LABELS[f] for f in fields if f not in PSEUDONYMISED],
    )


def _durations(settings: Settings) -> list[str]:
    return [
        f"Données individuelles (pseudonymisées) : supprimées quand aucun partenaire n'a cité la "
        f"personne depuis {settings.retention_months} mois (suppression mensuelle automatique, "
        "`synchro retention`).",
        f"Fichiers transmis par les partenaires : supprimés {settings.landing_retention_days} "
        "jours après leur intégration.",
        "Indicateurs agrégés publiés (aucune cellule de moins de 11 ménages) : conservés, ils ne "
        "concernent plus personne en particulier.",
    ]


def registre(settings: Settings) -> str:
    """docs/registre.md: the entry of the register of processing activities (art. 30)."""
    lines = [
        "# Registre des traitements — fiche « Synchrø : observation dynamique du sans-abrisme »",
        "",
        "Généré par `synchro docs` à partir des modules `synchro_dagster/sources/*` et des "
        "réglages (`synchro_dagster/settings.py`) : ne pas modifier à la main.",
        "",
        "| Rubrique (article 30.1 du RGPD) | Contenu |",
        "|---|---|",
        f"| Responsables du traitement | {CONTROLLERS[0].upper() + CONTROLLERS[1:]} |",
        f"| Contact pour l'exercice des droits | {settings.rights_contact} |",
        f"| Finalité | {PURPOSE} |",
        f"| Base légale | {LEGAL_BASIS} |",
        "| Personnes concernées | Personnes et ménages sans domicile ou mal logés connus d'au "
        "moins un partenaire du territoire au cours du mois. |",
        f"| Catégories de données | Voir le tableau par source ci-dessous ({len(all_sources())} "
        "sources). Identité et numéros de dossier pseudonymisés dès la réception (HMAC-SHA256 "
        "sous une clé secrète) ; date de naissance réduite à une tranche d'âge. Aucune donnée "
        "de santé, aucune donnée d'opinion. |",
        "| Destinataires | L'équipe projet désignée de l'observatoire (tables par ménage "
        "pseudonymisées) ; le public et les partenaires : indicateurs agrégés seulement, toute "
        "cellule de moins de 11 ménages masquée. |",
        "| Transferts hors de l'Union européenne | Aucun. |",
        "| Durées de conservation | " + " ".join(_durations(settings)) + " |",
        "| Mesures de sécurité | Pseudonymisation à l'entrée (clé hors de l'entrepôt, rotation "
        "`synchro key rotate`) ; fichiers lisibles par leur seul propriétaire (0600/0700) ; "
        "copie des analystes et publications lisibles par un groupe désigné ; interface "
        "Dagster sur la machine seule, derrière un proxy authentifié sur un serveur partagé ; "
        "journal d'audit de chaque opération (`synchro audit`). |",
        "",
        "## Données reçues, par source",
        "",
        "| Source | Partenaire | Données pseudonymisées à la réception | Autres données |",
        "|---|---|---|---|",
    ]
    for source in all_sources().values():
        hidden, kept = _fields(source)
        lines.append(
            f"| `{source.id}` — {source.label} | {source.partner} | "
            f"{', '.join(hidden) or '—'} | {', '.join(kept) or '—'} |"
        )
    return "\n".join(lines) + "\n"


def notice(settings: Settings) -> str:
    """docs/notice.md: the information notice for the persons concerned (art. 13 and 14)."""
    partners = [f"- {s.label}" for s in all_sources().values()]
    received = {f for s in all_sources().values() for f in s.columns}
    hidden = [FIELD_LABELS[f] for f in FIELDS if f in received and f in PSEUDONYMISED]
    kept = [FIELD_LABELS[f] for f in FIELDS if f in received and f not in PSEUDONYMISED]
    lines = [
        "# Information des personnes : l'observation Synchrø",
        "",
        "Généré par `synchro docs` à partir des modules `synchro_dagster/sources/*` et des "
        "réglages : ne pas modifier à la main. À afficher dans les lieux d'accueil et à "
        "remettre à toute personne qui le demande (articles 13 et 14 du RGPD).",
        "",
        "## Qui traite vos données, et pourquoi",
        "",
        f"Les responsables sont {CONTROLLERS}. {PURPOSE}",
        "",
        f"Base légale : {LEGAL_BASIS}",
        "",
        "## D'où viennent les données",
        "",
        "Vous ne nous les avez pas données directement : elles viennent des services qui vous "
        "accompagnent ou que vous avez sollicités, qui les transmettent chaque mois :",
        "",
        *partners,
        "",
        "## Quelles données",
        "",
        f"Votre identité et vos numéros de dossier ({', '.join(hidden)}) sont remplacés dès "
        "leur réception par des codes (pseudonymes) qui ne permettent pas de vous nommer ; ils "
        "servent seulement à ne vous compter qu'une fois. Sont aussi gardés : "
        f"{', '.join(kept)}.",
        "",
        "Personne ne prend de décision vous concernant à partir de ces données, et aucune "
        "décision n'est automatisée.",
        "",
        "## Qui les voit",
        "",
        "Seule l'équipe projet désignée de l'observatoire accède aux données par ménage, "
        "toujours pseudonymisées. Tout ce qui est publié est un chiffre d'ensemble portant sur "
        "au moins 11 ménages. Rien n'est transmis hors de l'Union européenne.",
        "",
        "## Combien de temps",
        "",
        *(f"- {d}" for d in _durations(settings)),
        "",
        "## Vos droits",
        "",
        "Vous pouvez demander à savoir ce qui est gardé sur vous (accès), le faire corriger "
        "(rectification), vous opposer à ce traitement (vos données sont alors effacées et ne "
        "seront plus prises en compte), ou en demander la limitation. Adressez-vous à "
        f"{settings.rights_contact}, ou à l'accueil de l'un des services ci-dessus qui "
        "transmettra. Vous pouvez aussi saisir la CNIL (www.cnil.fr, 3 place de Fontenoy, "
        "75007 Paris).",
    ]
    return "\n".join(lines) + "\n"
