"""Synthetic identities: first and last names by origin, compound first names, birth dates.

Lists hold common names, ordered by frequency; a share of last names is built
from syllables so that the territory has the long tail of rare names a real
one has. Every character in the lists is in cp1252, as partner CSV exports are;
a `NamePool` (params.py) may lead a ranking with native spellings beyond it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from synchro_dagster.synthetic.params import NamePool

LAST_NAMES: dict[str, list[str]] = {
    "france": """MARTIN BERNARD THOMAS PETIT ROBERT RICHARD DURAND DUBOIS MOREAU LAURENT SIMON
        MICHEL LEFÈBVRE LEROY ROUX DAVID BERTRAND MOREL FOURNIER GIRARD BONNET DUPONT LAMBERT
        FONTAINE ROUSSEAU VINCENT MÜLLER LEFÈVRE FAURE ANDRÉ MERCIER BLANC GUÉRIN BOYER GARNIER
        CHEVALIER FRANÇOIS LEGRAND GAUTHIER GARCIA PERRIN ROBIN CLÉMENT MORIN NICOLAS HENRY
        ROUSSEL MATHIEU GAUTIER MASSON MARCHAND DUVAL DENIS DUMONT MARIE LEMAIRE NOËL MEYER
        DUFOUR MEUNIER BRUN BLANCHARD GIRAUD JOLY RIVIÈRE LUCAS BRUNET GAILLARD BARBIER ARNAUD
        MARTINEZ GÉRARD ROCHE RENARD SCHMITT ROY LEROUX COLIN VIDAL CARON PICARD ROGER FABRE
        AUBERT LEMOINE RENAUD DUMAS LACROIX OLIVIER PHILIPPE BOURGEOIS PIERRE BENOÎT REY
        LECLERC PAYET ROLLAND LECLERCQ GUILLAUME LECOMTE LOPEZ JEAN DUPUY GUILLOT HUBERT BERGER
        CARPENTIER SANCHEZ DUPUIS MOULIN LOUIS DESCHAMPS HUET VASSEUR PEREZ BOUCHER FLEURY
        ROYER KLEIN JACQUET ADAM PARIS POIRIER MARTY AUBRY GUYOT CARRÉ CHARLES RENAULT
        CHARPENTIER MÉNARD MAILLARD BARON BERTIN BAILLY HERVÉ SCHNEIDER FERNANDEZ LE_GALL
        COLLET LÉGER BOUVIER JULIEN PRÉVOST MILLET PERROT DANIEL LE_ROUX COUSIN GERMAIN
        BRETON BESSON LANGLOIS RÉMY LE_GOFF PELLETIER LÉVÊQUE PERRIER LEBLANC BARRÉ LEBRUN
        MARCHAL WEBER MALLET HAMON BOULANGER JACOB MONNIER MICHAUD RODRIGUEZ GUICHARD GILLET
        ÉTIENNE GRONDIN POULAIN TESSIER CHEVALLIER COLLIN CHAUVIN DA_SILVA BOUCHET GAY LEMAÎTRE
        BENARD MARÉCHAL HUMBERT REYNAUD ANTOINE HOARAU PERRET BARTHÉLEMY CORDIER PICHON
        DE_LA_FONTAINE DE_SOUSA LE_BIHAN D'ALMEIDA DES_ROCHES""".split(),
    "maghreb": """BENALI BOUAZIZ BENSAÏD CHERIF HADDAD BELKACEM MANSOURI BENAMAR SAÏDI AMRANI
        BOUZIDI HAMDI KHELIFI BENYAHIA MEZIANE BOUDJEMAA BRAHIMI DJEBBAR TOUATI LAHLOU
        EL_IDRISSI EL_AMRANI BEN_ABDALLAH AÏT_ALI OUALI ZIANI MESSAOUDI BOUKHARI SLIMANI
        BELHADJ GHARBI TRABELSI JEBALI BENSALEM KACI ABDELLI HAMIDI NACERI RAHMANI SEBBAH
        BOUHADDA CHAOUI FERHAT GUERFI HAMMADI LARBI MAHDI NOURI OUAHABI TAHRI YAHIAOUI""".split(),
    "afrique_ouest": """DIALLO TRAORÉ KONÉ COULIBALY CAMARA DIARRA SYLLA SOW BARRY DIOP
        NDIAYE FALL SISSOKO KEITA TOURÉ CISSÉ BAMBA OUATTARA KOUASSI YAO KOFFI N'GUESSAN BAH
        BALDÉ DIABATÉ FOFANA KANTÉ SANGARÉ DOUMBIA DEMBÉLÉ GUEYE SECK MBAYE THIAM DIENG NIANG
        FAYE SARR KABA SOUMARÉ TANDIA DIAKITÉ KOUYATÉ SAMAKÉ MAÏGA TOGOLA""".split(),
    "europe_est": """POPESCU IONESCU POPA RADU STAN DUMITRU STOICA GHEORGHE RUSU MUNTEANU
        NOWAK KOWALSKI WISNIEWSKI WÓJCIK KAMINSKI LEWANDOWSKI ZIELINSKI IVANOV PETROV SIDOROV
        SMIRNOV KUZNETSOV POPOV HORVAT KOVAC BABIC MARIC JOVANOVIC PETROVIC NIKOLIC
        DIMITROV GEORGIEV HRISTOV KRASNIQI BERISHA GASHI HOXHA SHEHU KOZAK BONDARENKO
        KOVALENKO SHEVCHENKO TKACHENKO MELNYK""".split(),
    "autre": """AHMADI HOSSEINI RAHIMI KARIMI MOHAMMADI NAZARI SAFI STANEKZAI ABDI WARSAME
        HASSAN MOHAMED ALI OMAR YILMAZ KAYA DEMIR SAHIN ÇELIK NGUYEN TRAN LE PHAM MENDY GOMES
        DA_COSTA FERREIRA TSHIBANDA KABILA MUKENDI ILUNGA""".split(),
}
"""Upper-case last names; "_" stands for a space (particles: DE LA FONTAINE, EL IDRISSI)."""

FIRST_NAMES: dict[str, dict[str, list[str]]] = {
    "france": {
        "M": """Jean Pierre Michel Philippe Alain Nicolas Christophe Patrick Daniel Thierry
            Laurent Frédéric Éric Stéphane David Julien Sébastien Olivier Pascal Christian
            Thomas Kévin Maxime Alexandre Guillaume Anthony Jérôme Cédric Mickaël Romain
            Dylan Lucas Hugo Théo Enzo Jean-Pierre Jean-Claude Jean-Marc Jean-Luc Jean-François
            Jean-Paul Pierre-Yves Jean-Michel Jean-Baptiste Loïc Gaël Joël Noël Hervé
            René""".split(),
        "F": """Marie Nathalie Isabelle Sylvie Catherine Françoise Valérie Christine Sandrine
            Sophie Céline Stéphanie Véronique Chantal Nicole Aurélie Julie Émilie Laetitia
            Camille Léa Manon Chloé Emma Inès Océane Marie-Claire Marie-Christine Anne-Marie
            Marie-Thérèse Marie-Hélène Anne-Sophie Marie-Laure Marie-France Hélène Agnès
            Noémie Maëlle Zoé Mélanie Élodie Gaëlle Josiane Brigitte Danièle""".split(),
    },
    "maghreb": {
        "M": """Mohamed Ahmed Ali Karim Youssef Mehdi Rachid Said Omar Hamid Abdelkader
            Mustapha Nordine Farid Khaled Samir Bilal Hicham Sofiane Yacine Nabil Mourad Abdel
            Driss Mohamed-Amine Abdel-Kader Brahim Lakhdar Djamel Hakim""".split(),
        "F": """Fatima Khadija Aïcha Malika Nadia Samira Leila Yasmina Zohra Farida Naïma
            Saïda Amina Houria Karima Meriem Sabrina Nawel Rachida Souad Fatima-Zahra Nour
            Ikram Hanane Latifa Zineb""".split(),
    },
    "afrique_ouest": {
        "M": """Mamadou Moussa Ibrahima Ousmane Abdoulaye Seydou Amadou Boubacar Bakary
            Souleymane Lamine Cheikh Modou Issa Adama Sekou Mamadou-Lamine Alassane Kouassi
            Koffi Yao Aboubacar Demba Samba""".split(),
        "F": """Fatoumata Aminata Mariam Awa Kadiatou Aissatou Hawa Fanta Assétou Oumou
            Ramata Bintou Ndeye Coumba Adjoua Akissi Mariama Djeneba Korotoum Salimata""".split(),
    },
    "europe_est": {
        "M": """Ion Gheorghe Vasile Constantin Mihai Andrei Adrian Florin Marian Piotr
            Krzysztof Tomasz Pawel Sergei Dmitri Alexei Ivan Nikolai Vladimir Oleksandr Mykola
            Dragan Milan Goran Artan Besnik Arben""".split(),
        "F": """Maria Elena Ioana Ana Mihaela Andreea Cristina Anna Katarzyna Agnieszka Olga
            Natalia Irina Svetlana Tatiana Oksana Iryna Milica Jelena Ana-Maria Fatjona
            Drita""".split(),
    },
    "autre": {
        "M": """Ahmad Mohammad Abdul Hamid Mustafa Jawad Farhad Abdirahman Hassan Mehmet
            Emre Minh Duc Jean-Claude Patrice Joseph""".split(),
        "F": """Fatemeh Zahra Maryam Fatuma Hodan Ayse Emine Elif Lan Mai Thu Grâce Esther
            Marie-Claire Béatrice""".split(),
    },
}

_SYLLABLES: dict[str, list[str]] = {
    "france": "ber ge ron mar cha lan dou vin cel por fer mon bau til rou nier ard ot".split(),
    "maghreb": "ben el ha mou ra bou ka li zi di ab del ma sa ni ri ou".split(),
    "afrique_ouest": "ko na ba di ou ma so fa ke ta sa ni dia mba ye ra".split(),
    "europe_est": "po vic ko va ski ov es cu ne ra sto ian ko ni".split(),
    "autre": "ah ma za ri ka han sa fi mo ra di".split(),
}


@dataclass(slots=True)
class Identity:
    """A person's true identity (the simulator's truth, never a partner's rendering)."""

    first_name: str
    birth_last_name: str
    usage_last_name: str | None  # married women who use their spouse's name
    sex: str  # "M" or "F"
    birth_date: date


def _ranked(leading: tuple[str, ...], names: list[str]) -> list[str]:
    return [*leading, *(n for n in names if n not in leading)]


class Names:
    """Draws origins and names as a `NamePool` says: its leading names first, then the lists."""

    def __init__(self, pool: NamePool):
        self.pool = pool
        self.last_names = {
            origin: _ranked(pool.leading_last_names.get(origin, ()), names)
            for origin, names in LAST_NAMES.items()
        }
        self.first_names = {
            origin: {
                sex: _ranked(pool.leading_first_names.get(origin, {}).get(sex, ()), names)
                for sex, names in by_sex.items()
            }
            for origin, by_sex in FIRST_NAMES.items()
        }
        self._weights: dict[int, list[float]] = {}

    def _pick(self, rng: random.Random, items: list[str]) -> str:
        weights = self._weights.get(len(items))
        if weights is None:
            s = self.pool.zipf_exponent
            weights = self._weights[len(items)] = [1 / (r + 1) ** s for r in range(len(items))]
        return rng.choices(items, weights=weights)[0]

    def origin(self, rng: random.Random) -> str:
        origins = self.pool.origins
        return rng.choices(list(origins), weights=list(origins.values()))[0]

    def last_name(self, rng: random.Random, origin: str) -> str:
        if rng.random() < self.pool.rare_last_name_share:
            parts = rng.choices(_SYLLABLES[origin], k=rng.randint(2, 3))
            return "".join(parts).upper()
        return self._pick(rng, self.last_names[origin]).replace("_", " ")

    def first_name(self, rng: random.Random, origin: str, sex: str) -> str:
        return self._pick(rng, self.first_names[origin][sex])


def birth_date(rng: random.Random, reference: date, min_age: float, max_age: float) -> date:
    age_days = rng.uniform(min_age, max_age) * 365.25
    return reference - timedelta(days=int(age_days))
