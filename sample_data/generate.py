#!/usr/bin/env python3
"""Generate the wavetool sample study (deterministic, seeded).

Run from the repository root:

    .venv/bin/python sample_data/generate.py

Rewrites sample_data/inbox/, sample_data/wavetool.toml.  Needs numpy, pandas,
pyreadstat and GNU PSPP (`pspp` on PATH) for the wave-3 portable file and the
multiple-response set in wave 1.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import tempfile
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat

HERE = Path(__file__).resolve().parent
INBOX = HERE / "inbox"
SEED = 20200601
rng = np.random.default_rng(SEED)

# --------------------------------------------------------------------------------------------
# Jurisdictions
# --------------------------------------------------------------------------------------------
JURIS = {  # code: (en, fr, population share)
    "NL": ("Newfoundland and Labrador", "Terre-Neuve-et-Labrador", 0.0137),
    "PE": ("Prince Edward Island", "Île-du-Prince-Édouard", 0.0042),
    "NS": ("Nova Scotia", "Nouvelle-Écosse", 0.0261),
    "NB": ("New Brunswick", "Nouveau-Brunswick", 0.0206),
    "QC": ("Quebec", "Québec", 0.2254),
    "ON": ("Ontario", "Ontario", 0.3876),
    "MB": ("Manitoba", "Manitoba", 0.0364),
    "SK": ("Saskatchewan", "Saskatchewan", 0.0309),
    "AB": ("Alberta", "Alberta", 0.1160),
    "BC": ("British Columbia", "Colombie-Britannique", 0.1358),
    "YT": ("Yukon", "Yukon", 0.0011),
    "NT": ("Northwest Territories", "Territoires du Nord-Ouest", 0.0012),
    "NU": ("Nunavut", "Nunavut", 0.0010),
}
CODES = list(JURIS)
POP = np.array([JURIS[c][2] for c in CODES])
POP = POP / POP.sum()
BOOST = {"ON": 1.25, "QC": 1.35, "BC": 1.6, "NS": 3.5, "NB": 3.5}
TERRITORIES = ("YT", "NT", "NU")  # a tuple: set order would vary between runs

# --------------------------------------------------------------------------------------------
# Waves
# --------------------------------------------------------------------------------------------
WAVES = {
    1: dict(
        n=3000,
        label="Wave 1 (June 2020)",
        label_fr="Vague 1 (juin 2020)",
        start="2020-06-01",
        end="2020-06-21",
        trend=0.0,
        covid=None,
    ),
    2: dict(
        n=2400,
        label="Wave 2 (September 2020)",
        label_fr="Vague 2 (septembre 2020)",
        start="2020-09-08",
        end="2020-09-27",
        trend=-0.40,
        covid=-0.20,
    ),
    3: dict(
        n=4200,
        label="Wave 3 (November 2020)",
        label_fr="Vague 3 (novembre 2020)",
        start="2020-11-09",
        end="2020-11-29",
        trend=-0.12,
        covid=-0.35,
    ),
    4: dict(
        n=5200,
        label="Wave 4 (January 2021)",
        label_fr="Vague 4 (janvier 2021)",
        start="2021-01-11",
        end="2021-01-31",
        trend=0.08,
        covid=-0.05,
    ),
}

# --------------------------------------------------------------------------------------------
# Scales (English, French).  8/9 are user-missing everywhere they appear.
# --------------------------------------------------------------------------------------------
DK = {8: ("Don't know", "Ne sait pas"), 9: ("Refused", "Refus")}


def scale(*pairs, dk=True):
    d = {i + 1: p for i, p in enumerate(pairs)}
    if dk:
        d.update(DK)
    return d


SAT5 = scale(
    ("Very dissatisfied", "Très insatisfait"),
    ("Dissatisfied", "Insatisfait"),
    ("Neither satisfied nor dissatisfied", "Ni satisfait ni insatisfait"),
    ("Satisfied", "Satisfait"),
    ("Very satisfied", "Très satisfait"),
)
AGR5 = scale(
    ("Strongly disagree", "Fortement en désaccord"),
    ("Disagree", "En désaccord"),
    ("Neither agree nor disagree", "Ni en accord ni en désaccord"),
    ("Agree", "D'accord"),
    ("Strongly agree", "Fortement d'accord"),
)
TRUST5 = scale(
    ("No trust at all", "Aucune confiance"),
    ("Little trust", "Peu de confiance"),
    ("Some trust", "Une certaine confiance"),
    ("A lot of trust", "Beaucoup de confiance"),
    ("Complete trust", "Confiance totale"),
)
EXP5 = scale(
    ("Much worse than expected", "Bien pire que prévu"),
    ("Worse than expected", "Pire que prévu"),
    ("About as expected", "À peu près comme prévu"),
    ("Better than expected", "Mieux que prévu"),
    ("Much better than expected", "Bien mieux que prévu"),
)
CMP5 = scale(
    ("Much worse", "Bien pire"),
    ("Somewhat worse", "Un peu pire"),
    ("About the same", "À peu près pareil"),
    ("Somewhat better", "Un peu mieux"),
    ("Much better", "Bien mieux"),
)
INT5 = scale(
    ("Not at all interested", "Pas du tout intéressé"),
    ("Not very interested", "Peu intéressé"),
    ("Somewhat interested", "Assez intéressé"),
    ("Interested", "Intéressé"),
    ("Very interested", "Très intéressé"),
)
COMF4 = scale(
    ("Very uncomfortable", "Très mal à l'aise"),
    ("Somewhat uncomfortable", "Plutôt mal à l'aise"),
    ("Somewhat comfortable", "Plutôt à l'aise"),
    ("Very comfortable", "Très à l'aise"),
)
CONC5 = scale(
    ("Not at all concerned", "Pas du tout préoccupé"),
    ("Not very concerned", "Peu préoccupé"),
    ("Somewhat concerned", "Assez préoccupé"),
    ("Very concerned", "Très préoccupé"),
    ("Extremely concerned", "Extrêmement préoccupé"),
)
CONF5 = scale(
    ("Not at all confident", "Pas du tout confiant"),
    ("Not very confident", "Peu confiant"),
    ("Somewhat confident", "Assez confiant"),
    ("Confident", "Confiant"),
    ("Very confident", "Très confiant"),
)
QUAL5 = scale(
    ("Very poor", "Très mauvaise"),
    ("Poor", "Mauvaise"),
    ("Fair", "Passable"),
    ("Good", "Bonne"),
    ("Very good", "Très bonne"),
)
YESNO = scale(("Yes", "Oui"), ("No", "Non"))
DICHO = {0: ("Not selected", "Non sélectionné"), 1: ("Selected", "Sélectionné")}
AGEGRP_L = {
    1: ("18 to 34", "18 à 34 ans"),
    2: ("35 to 54", "35 à 54 ans"),
    3: ("55 to 64", "55 à 64 ans"),
    4: ("65 or older", "65 ans ou plus"),
}
GENDER_L = {1: ("Man", "Homme"), 2: ("Woman", "Femme"), 3: ("Another gender", "Autre genre")}

# --------------------------------------------------------------------------------------------
# Core questions: name -> (English label, French label, scale, loading, juris effects, first wave)
# `kind` drives the simulation: 'sat' loads on general satisfaction, 'trust' on trust, etc.
# --------------------------------------------------------------------------------------------
Q = {}


def q(name, en, fr, labels, kind="sat", load=0.8, first=1, route=None, mean=0.35):
    Q[name] = dict(en=en, fr=fr, labels=labels, kind=kind, load=load, first=first, route=route, mean=mean)


q(
    "Q1",
    "Overall satisfaction with the service received",
    "Satisfaction globale à l'égard du service reçu",
    SAT5,
    load=0.95,
)
q(
    "Q2",
    "Satisfaction with how easy it was to get the service",
    "Satisfaction quant à la facilité d'obtenir le service",
    SAT5,
    load=0.85,
)
q(
    "Q3",
    "Satisfaction with the time it took to get the service",
    "Satisfaction quant au temps nécessaire pour obtenir le service",
    SAT5,
    load=0.8,
    mean=0.05,
)
q(
    "Q4",
    "Satisfaction with the outcome of the service",
    "Satisfaction à l'égard du résultat du service",
    SAT5,
    load=0.85,
)
q("Q5", "Staff were courteous", "Le personnel était courtois", AGR5, load=0.6, mean=0.9)
q("Q6", "I was treated fairly", "J'ai été traité de façon équitable", AGR5, load=0.65, mean=0.7)
q(
    "Q7",
    "Staff were knowledgeable and competent",
    "Le personnel était compétent et bien informé",
    AGR5,
    load=0.65,
    mean=0.6,
)
q(
    "Q8",
    "It was clear what to do if I had a problem",
    "Je savais quoi faire en cas de problème",
    AGR5,
    load=0.6,
    mean=0.2,
)
q(
    "Q9",
    "Information about the service was easy to find",
    "Il était facile de trouver de l'information sur le service",
    AGR5,
    load=0.7,
    mean=0.3,
)
q(
    "Q10",
    "In the end, I got what I needed",
    "Au bout du compte, j'ai obtenu ce dont j'avais besoin",
    AGR5,
    load=0.8,
    mean=0.8,
)
q("Q11", "How the service compared with expectations", "Le service comparé à vos attentes", EXP5, load=0.75, mean=0.0)
q(
    "Q12",
    "Satisfaction with online services (website or online account users)",
    "Satisfaction à l'égard des services en ligne (utilisateurs du site Web ou d'un compte en ligne)",
    SAT5,
    load=0.7,
    route="online",
)
q(
    "Q13",
    "Satisfaction with telephone services (phone users)",
    "Satisfaction à l'égard des services téléphoniques (utilisateurs du téléphone)",
    SAT5,
    load=0.7,
    route="CH_2",
    mean=0.0,
)
q(
    "Q14",
    "Satisfaction with in-person services (in-person users)",
    "Satisfaction à l'égard des services en personne (utilisateurs en personne)",
    SAT5,
    load=0.7,
    route="CH_1",
    mean=0.5,
)
q(
    "Q15",
    "Trust in the public service",
    "Confiance envers la fonction publique",
    TRUST5,
    kind="trust",
    load=0.9,
    mean=0.1,
)
q(
    "Q16",
    "The public service is honest and acts with integrity",
    "La fonction publique est honnête et agit avec intégrité",
    AGR5,
    kind="trust",
    load=0.75,
    mean=0.3,
)
q(
    "Q17",
    "The public service spends taxpayers' money wisely",
    "La fonction publique dépense judicieusement l'argent des contribuables",
    AGR5,
    kind="trust",
    load=0.7,
    mean=-0.3,
)
q(
    "Q18",
    "Government services today compared with five years ago",
    "Les services gouvernementaux aujourd'hui comparativement à il y a cinq ans",
    CMP5,
    load=0.5,
    mean=0.1,
)
q(
    "Q19",
    "Interest in a secure digital identity to access government services",
    "Intérêt pour une identité numérique sécurisée pour accéder aux services gouvernementaux",
    INT5,
    kind="digital",
    load=0.8,
    mean=0.4,
)
q(
    "Q20",
    "Comfort with artificial intelligence answering questions in government services",
    "Aisance avec l'intelligence artificielle pour répondre aux questions dans les services gouvernementaux",
    COMF4,
    kind="ai",
    load=0.85,
    mean=-0.1,
)
q(
    "Q21",
    "Comfort with artificial intelligence helping decide eligibility for benefits",
    "Aisance avec l'intelligence artificielle pour aider à décider de l'admissibilité aux prestations",
    COMF4,
    kind="ai",
    load=0.85,
    mean=-0.7,
)
q(
    "Q22",
    "I prefer to deal with government online when possible",
    "Je préfère faire affaire avec le gouvernement en ligne lorsque c'est possible",
    AGR5,
    kind="digital",
    load=0.7,
    mean=0.3,
)
q(
    "Q23",
    "Concern about the privacy of personal information shared online with government",
    "Préoccupation quant à la confidentialité des renseignements personnels transmis en ligne au gouvernement",
    CONC5,
    kind="privacy",
    load=0.8,
    mean=0.2,
)
q(
    "Q24",
    "COVID-19: Satisfaction with the government's response to the pandemic",
    "COVID-19 : Satisfaction à l'égard de la réponse du gouvernement à la pandémie",
    SAT5,
    kind="covid",
    load=0.85,
    first=2,
    mean=0.4,
)
q(
    "Q25",
    "COVID-19: Public health information from government has been clear",
    "COVID-19 : L'information de santé publique du gouvernement a été claire",
    AGR5,
    kind="covid",
    load=0.75,
    first=2,
    mean=0.5,
)
q(
    "Q26",
    "COVID-19: Emergency benefits were easy to apply for",
    "COVID-19 : Il était facile de demander les prestations d'urgence",
    AGR5,
    kind="covid",
    load=0.6,
    first=2,
    mean=0.3,
)
q(
    "Q27",
    "COVID-19: Confidence in government to manage the recovery",
    "COVID-19 : Confiance dans la capacité du gouvernement à gérer la relance",
    CONF5,
    kind="covid",
    load=0.8,
    first=2,
    mean=0.0,
)
q(
    "Q28",
    "Overall quality of government services",
    "Qualité globale des services gouvernementaux",
    QUAL5,
    load=0.8,
    mean=0.3,
)

CHANNELS = {
    "CH_1": (
        "Channel used in the past 12 months: In person",
        "Mode utilisé au cours des 12 derniers mois : En personne",
    ),
    "CH_2": ("Channel used in the past 12 months: Telephone", "Mode utilisé au cours des 12 derniers mois : Téléphone"),
    "CH_3": ("Channel used in the past 12 months: Website", "Mode utilisé au cours des 12 derniers mois : Site Web"),
    "CH_4": (
        "Channel used in the past 12 months: Online account",
        "Mode utilisé au cours des 12 derniers mois : Compte en ligne",
    ),
    "CH_5": ("Channel used in the past 12 months: Mail", "Mode utilisé au cours des 12 derniers mois : Courrier"),
    "CH_6": (
        "Channel used in the past 12 months: Mobile app",
        "Mode utilisé au cours des 12 derniers mois : Application mobile",
    ),
}
OTHER = {  # name: (en, fr, labels)
    "RESPID": ("Respondent ID", "Identifiant du répondant", None),
    "PROV": (
        "Province or territory of residence",
        "Province ou territoire de résidence",
        {c: (v[0], v[1]) for c, v in JURIS.items()},
    ),
    "WEIGHT": ("Final weight", "Pondération finale", None),
    "AGEGRP": ("Age group", "Groupe d'âge", AGEGRP_L),
    "GENDER": ("Gender", "Genre", GENDER_L),
    "COMMENT": (
        "Any other comments about government services (open-ended)",
        "Autres commentaires sur les services gouvernementaux (question ouverte)",
        None,
    ),
}
BC_COLS = {
    "BC_1": ("BC: Satisfaction with Service BC centres", SAT5),
    "BC_2": ("BC: Aware of the BC Services Card app", YESNO),
}

# --------------------------------------------------------------------------------------------
# Open-ended comments
# --------------------------------------------------------------------------------------------
COMMENTS_EN = [
    'Staff were "great", thanks',
    "Waited 45 minutes on hold, then got cut off.",
    "The website is confusing, too many links, not enough answers.",
    'The online account "timed out" twice while I was filling the form.',
    "Fast, friendly, done in 10 minutes. Well done!",
    "I couldn't find the right form, so I mailed everything in.",
    "Please keep the in-person offices open; not everyone is online.",
    "CERB payment arrived quickly, no issues.",
    "Too much paperwork, and I had to repeat my story three times.",
    "Good service overall, but the app crashes on my phone.",
    "Mixed: the agent was kind, the rules were not.",
]
COMMENTS_FR = [
    "Le service était « très » lent, vraiment.",
    "Personnel courtois, mais l'attente était interminable.",
    "Le site Web est difficile à naviguer, surtout sur mobile.",
    "Très satisfait : rapide, efficace et poli.",
    "J'ai dû appeler trois fois, c'est décevant.",
    "Merci à l'agente, elle a été « formidable ».",
    "Les formulaires en français contiennent des erreurs, c'est dommage.",
    "Prestation reçue à temps, aucun problème.",
    "Pourquoi faut-il toujours envoyer des documents par la poste?",
]


def ascii_fold(s: str) -> str:
    s = s.replace("«\u00a0", '"').replace("\u00a0»", '"').replace("«", '"').replace("»", '"')
    s = s.replace("\u2019", "'")
    return unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode("ascii")


# --------------------------------------------------------------------------------------------
# Simulation helpers
# --------------------------------------------------------------------------------------------
CUTS5 = np.array([-1.6, -0.75, 0.05, 1.05])
CUTS4 = np.array([-0.9, 0.0, 0.9])
PROV_SAT = {"QC": -0.30, "BC": 0.22, "AB": 0.05, "NL": 0.1, "PE": 0.15, "NU": -0.2, "NT": -0.1}
PROV_TRUST = {"QC": -0.25, "BC": 0.10, "AB": -0.15}
PROV_DIGITAL = {"QC": -0.15, "BC": 0.25, "ON": 0.1, "NU": -0.3, "NT": -0.2, "YT": -0.1}


def ordinal(latent, ncat):
    cuts = CUTS5 if ncat == 5 else CUTS4
    return (np.searchsorted(cuts, latent) + 1).astype(float)


def add_missing(x, p_dk=0.03, p_ref=0.01, p_sys=0.01):
    u = rng.random(len(x))
    x = x.copy()
    x[u < p_dk] = 8
    x[(u >= p_dk) & (u < p_dk + p_ref)] = 9
    x[(u >= p_dk + p_ref) & (u < p_dk + p_ref + p_sys)] = np.nan
    return x


def allocate(n_total):
    """Sample sizes by jurisdiction: proportional, boosted for subscribers, floors for small ones."""
    terr = {c: int(rng.integers(42, 61)) for c in TERRITORIES}
    rest = n_total - sum(terr.values())
    raw = np.array([0 if c in TERRITORIES else POP[i] * BOOST.get(c, 1.0) for i, c in enumerate(CODES)])
    raw = raw / raw.sum() * rest
    raw = np.maximum(raw, np.where([c in TERRITORIES for c in CODES], 0, 60))
    n = np.floor(raw / raw.sum() * rest).astype(int)
    n[CODES.index("ON")] += rest - n.sum()
    return {c: (terr[c] if c in TERRITORIES else int(n[i])) for i, c in enumerate(CODES)}


def make_wave(w):
    spec = WAVES[w]
    alloc = allocate(spec["n"])
    prov = np.concatenate([[c] * k for c, k in alloc.items()])
    rng.shuffle(prov)
    n = len(prov)
    # demographics: sample skews older / female vs population
    age = rng.choice([1, 2, 3, 4], size=n, p=[0.20, 0.33, 0.20, 0.27])
    gender = rng.choice([1, 2, 3], size=n, p=[0.46, 0.53, 0.01])

    sat = rng.normal(size=n) + np.array([PROV_SAT.get(p, 0.0) for p in prov]) + spec["trend"]
    sat += np.where(age == 4, 0.2, 0.0)
    trust = 0.55 * sat + 0.8 * rng.normal(size=n) + np.array([PROV_TRUST.get(p, 0.0) for p in prov])
    digital = (
        rng.normal(size=n)
        + np.array([PROV_DIGITAL.get(p, 0.0) for p in prov])
        + np.select([age == 1, age == 2, age == 3], [0.5, 0.25, -0.2], -0.6)
    )
    ai = 0.5 * digital + 0.85 * rng.normal(size=n) + np.where(prov == "QC", -0.2, 0.0)
    privacy = -0.3 * trust + rng.normal(size=n) + np.where(prov == "QC", 0.2, 0.0)
    covid = (
        0.5 * trust
        + 0.3 * sat
        + 0.75 * rng.normal(size=n)
        + (spec["covid"] or 0.0)
        + np.array([{"QC": -0.25, "BC": 0.35, "NS": 0.3, "NB": 0.2, "AB": -0.3}.get(p, 0.0) for p in prov])
    )
    factors = dict(sat=sat, trust=trust, digital=digital, ai=ai, privacy=privacy, covid=covid)

    df = pd.DataFrame({"RESPID": (w * 100000 + np.arange(1, n + 1)).astype(float), "PROV": prov})

    # channels (0/1), younger people more online
    dig_p = 1 / (1 + np.exp(-digital))
    ch = {
        "CH_1": rng.random(n) < 0.45 - 0.15 * (w >= 2) + 0.05 * (age == 4),
        "CH_2": rng.random(n) < 0.50 + 0.05 * (w == 2),
        "CH_3": rng.random(n) < 0.35 + 0.5 * dig_p,
        "CH_4": rng.random(n) < 0.10 + 0.45 * dig_p,
        "CH_5": rng.random(n) < 0.18 + 0.10 * (age == 4),
        "CH_6": rng.random(n) < 0.02 + 0.30 * dig_p * (age <= 2),
    }
    for k, v in ch.items():
        ch[k] = v.astype(float)
    ch["online"] = np.maximum(ch["CH_3"], ch["CH_4"])

    for name, d in Q.items():
        if w < d["first"]:
            continue
        ncat = 4 if d["labels"] is COMF4 else 5
        lat = d["mean"] + d["load"] * factors[d["kind"]] + np.sqrt(max(0.05, 1 - d["load"] ** 2)) * rng.normal(size=n)
        x = add_missing(ordinal(lat, ncat))
        if d["route"]:
            x[ch[d["route"]] == 0] = np.nan
        df["Q5A" if (name == "Q5" and w == 4) else name] = x
        if name == "Q18":  # channels sit after Q18 in the questionnaire
            for k in CHANNELS:
                df[k] = ch[k]
    # demographics
    df["AGEGRP"] = age.astype(float)
    df["GENDER"] = gender.astype(float)
    g9 = rng.random(n) < 0.004
    df.loc[g9, "GENDER"] = 9  # refused gender (user-missing)
    # BC extra columns
    is_bc = prov == "BC"
    bc1 = add_missing(ordinal(0.3 + 0.8 * sat + 0.6 * rng.normal(size=n), 5))
    bc2 = add_missing(np.where(rng.random(n) < 0.35 + 0.1 * w, 1.0, 2.0), p_sys=0.0)
    df["BC_1"] = np.where(is_bc, bc1, np.nan)
    df["BC_2"] = np.where(is_bc, bc2, np.nan)
    # comments
    comments = []
    for p in prov:
        if rng.random() < 0.72:
            comments.append("")
            continue
        fr = (
            (p == "QC" and rng.random() < 0.8)
            or (p == "NB" and rng.random() < 0.3)
            or (p == "ON" and rng.random() < 0.04)
        )
        pool = COMMENTS_FR if fr else COMMENTS_EN
        c = pool[int(rng.integers(len(pool)))]
        comments.append(ascii_fold(c) if w == 3 else c)
    df["COMMENT"] = comments
    # weights: jurisdiction share correction x age correction x noise, normalised to mean 1
    samp = pd.Series(prov).value_counts(normalize=True)
    pw = np.array([POP[CODES.index(p)] / samp[p] for p in prov])
    age_pop = {1: 0.27, 2: 0.33, 3: 0.17, 4: 0.23}
    age_s = pd.Series(age).value_counts(normalize=True)
    aw = np.array([age_pop[a] / age_s[a] for a in age])
    wt = pw * aw * rng.lognormal(0, 0.25, size=n)
    for _ in range(50):  # trim to [0.2, 5] and keep the mean at 1
        wt = np.clip(wt / wt.mean(), 0.2, 5.0)
    df["WEIGHT"] = np.round(wt, 6)
    order = ["RESPID", "PROV", "WEIGHT"] + [c for c in df.columns if c not in ("RESPID", "PROV", "WEIGHT")]
    return df[order]


# --------------------------------------------------------------------------------------------
# Metadata for a wave
# --------------------------------------------------------------------------------------------
def meta_for(df, w):
    labels, vlabels, missing, measure, fmt = {}, {}, {}, {}, {}
    for col in df.columns:
        name = "Q5" if col == "Q5A" else col
        if name in Q:
            d = Q[name]
            labels[col] = d["en"]
            vl = {k: v[0] for k, v in d["labels"].items()}
            if name == "Q3" and w == 3:
                vl[3] = "Neutral"
            vlabels[col] = vl
            missing[col] = [8, 9]
            measure[col] = "ordinal"
            fmt[col] = "F1.0"
        elif col in CHANNELS:
            labels[col] = CHANNELS[col][0]
            vlabels[col] = {k: v[0] for k, v in DICHO.items()}
            measure[col] = "nominal"
            fmt[col] = "F1.0"
        elif col in BC_COLS:
            labels[col], lab = BC_COLS[col]
            vlabels[col] = {k: v[0] for k, v in lab.items()}
            missing[col] = [8, 9]
            measure[col] = "ordinal" if lab is SAT5 else "nominal"
            fmt[col] = "F1.0"
        else:
            en, _fr, lab = OTHER[col]
            labels[col] = en
            if lab:
                vlabels[col] = {k: v[0] for k, v in lab.items()}
            if col == "GENDER":
                vlabels[col][9] = "Refused"
                missing[col] = [9]
            measure[col] = {
                "RESPID": "nominal",
                "PROV": "nominal",
                "WEIGHT": "scale",
                "AGEGRP": "ordinal",
                "GENDER": "nominal",
                "COMMENT": "nominal",
            }[col]
            fmt[col] = {
                "RESPID": "F6.0",
                "PROV": "A2",
                "WEIGHT": "F8.6",
                "AGEGRP": "F1.0",
                "GENDER": "F1.0",
                "COMMENT": "A200",
            }[col]
    return labels, vlabels, missing, measure, fmt


def write_sav(df, path, w, compress=False, file_label=None):
    labels, vlabels, missing, measure, fmt = meta_for(df, w)
    # pyreadstat sizes a string variable to its longest value; an all-blank value of 200 spaces
    # (read back as "", as in SPSS) makes COMMENT an A200 variable as in the questionnaire spec.
    df = df.copy()
    blank = df.index[df["COMMENT"] == ""][0]
    df.loc[blank, "COMMENT"] = " " * 200
    pyreadstat.write_sav(
        df,
        str(path),
        file_label=file_label or f"Citizens' Service Tracking Study - wave {w}",
        column_labels=labels,
        variable_value_labels=vlabels,
        missing_ranges=missing,
        variable_measure=measure,
        variable_format=fmt,
        compress=compress,
    )


def codebook_rows(df, labels, vlabels, missing, measure, fmt):
    rows = []
    for col in df.columns:
        is_str = fmt[col].startswith("A")
        rows.append(
            dict(
                variable=col,
                label=labels[col],
                type="string" if is_str else "numeric",
                measure=measure[col],
                format=fmt[col],
                code="",
                code_label="",
                missing="",
            )
        )
        for code, lab in (vlabels.get(col) or {}).items():
            rows.append(
                dict(
                    variable=col,
                    label="",
                    type="",
                    measure="",
                    format="",
                    code=str(code),
                    code_label=lab,
                    missing="true" if code in missing.get(col, []) else "",
                )
            )
    return rows


def write_codebook(rows, path):
    with open(path, "w", newline="", encoding="utf-8") as f:
        wr = csv.DictWriter(
            f, fieldnames=["variable", "label", "type", "measure", "format", "code", "code_label", "missing"]
        )
        wr.writeheader()
        wr.writerows(rows)


def write_csv(df, path):
    out = pd.DataFrame(index=df.index)
    for col in df.columns:
        s = df[col]
        if col == "WEIGHT":
            out[col] = s.map(lambda v: f"{v:.6f}")
        elif not pd.api.types.is_numeric_dtype(s):
            out[col] = s
        else:
            out[col] = s.astype("Int64")
    out.to_csv(path, index=False, encoding="utf-8", lineterminator="\n")


def stamp(path: Path, w: int):
    """Overwrite the creation date/time in a .sav/.zsav/.por header so reruns are byte-identical."""
    day = pd.Timestamp(WAVES[w]["end"])
    data = bytearray(path.read_bytes())
    if path.suffix == ".por":
        # header text is split into 80-column lines: map positions ignoring line breaks
        pos = [i for i, b in enumerate(data) if b not in (10, 13)]
        flat = bytes(data[i] for i in pos)
        k = flat.index(b"SPSSPORTA8/") + len(b"SPSSPORTA8/")
        new = day.strftime("%Y%m%d").encode() + b"6/090000"
        assert flat[k + 8 : k + 10] == b"6/"
        for j, b in enumerate(new):
            data[pos[k + j]] = b
    else:
        assert data[:4] in (b"$FL2", b"$FL3")
        data[92:109] = (day.strftime("%d %b %y") + "09:00:00").encode()
    path.write_bytes(bytes(data))


def run_pspp(syntax: str, cwd: Path):
    with tempfile.NamedTemporaryFile("w", suffix=".sps", dir=cwd, delete=False, encoding="utf-8") as f:
        f.write(syntax)
        sps = Path(f.name)
    try:
        r = subprocess.run(
            ["pspp", "-O", "format=txt", "-o", "/dev/null", sps.name], cwd=cwd, capture_output=True, text=True
        )
        if r.returncode != 0 or "error" in (r.stdout + r.stderr).lower():
            sys.exit(f"pspp failed:\n{r.stdout}\n{r.stderr}")
    finally:
        sps.unlink()


# --------------------------------------------------------------------------------------------
# Subscriber custom questions
# --------------------------------------------------------------------------------------------
CUSTOM = {
    "ontario": dict(
        juris=["ON"],
        fmt="csv",
        waves=[1, 2, 3, 4],
        qs={
            "C1": ("Satisfaction with ServiceOntario", SAT5, "sat", "ordinal"),
            "C2": (
                "Renewed a health card or driver's licence online in the past 12 months",
                YESNO,
                "digital",
                "nominal",
            ),
            "C3": ("Ontario should offer a provincial digital ID", AGR5, "digital", "ordinal"),
        },
    ),
    "quebec": dict(
        juris=["QC"],
        fmt="sav",
        waves=[1, 2, 3, 4],
        qs={
            "C1": (
                "Satisfaction à l'égard de Services Québec",
                {
                    1: "Très insatisfait",
                    2: "Insatisfait",
                    3: "Ni satisfait ni insatisfait",
                    4: "Satisfait",
                    5: "Très satisfait",
                    8: "Ne sait pas",
                    9: "Refus",
                },
                "sat",
                "ordinal",
            ),
            "C2": (
                "A utilisé clicSÉQUR au cours des 12 derniers mois",
                {1: "Oui", 2: "Non", 8: "Ne sait pas", 9: "Refus"},
                "digital",
                "nominal",
            ),
            "C3": (
                "Confiance envers l'Administration québécoise",
                {
                    1: "Aucune confiance",
                    2: "Peu de confiance",
                    3: "Une certaine confiance",
                    4: "Beaucoup de confiance",
                    5: "Confiance totale",
                    8: "Ne sait pas",
                    9: "Refus",
                },
                "trust",
                "ordinal",
            ),
            "C4": (
                "Le français est facile à utiliser dans les services en ligne",
                {
                    1: "Fortement en désaccord",
                    2: "En désaccord",
                    3: "Ni en accord ni en désaccord",
                    4: "D'accord",
                    5: "Fortement d'accord",
                    8: "Ne sait pas",
                    9: "Refus",
                },
                "sat",
                "ordinal",
            ),
        },
    ),
    "british-columbia": dict(
        juris=["BC"],
        fmt="csv",
        waves=[1, 4],
        qs={
            "C1": ("Used the Health Gateway in the past 12 months", YESNO, "digital", "nominal"),
            "C2": ("Satisfaction with BC government COVID-19 information", SAT5, "sat", "ordinal"),
        },
    ),
    "maritimes": dict(
        juris=["NS", "NB"],
        fmt="csv",
        waves=[1, 3, 4],
        qs={
            "C1": ("Would use a shared Maritime online service portal", AGR5, "digital", "ordinal"),
            "C2": ("Satisfaction with provincial online services", SAT5, "sat", "ordinal"),
        },
    ),
}
QC_EN = {
    "C1": (
        "Satisfaction with Services Québec",
        {
            1: "Very dissatisfied",
            2: "Dissatisfied",
            3: "Neither satisfied nor dissatisfied",
            4: "Satisfied",
            5: "Very satisfied",
            8: "Don't know",
            9: "Refused",
        },
    ),
    "C2": ("Used clicSÉQUR in the past 12 months", {1: "Yes", 2: "No", 8: "Don't know", 9: "Refused"}),
    "C3": (
        "Trust in the Quebec public administration",
        {
            1: "No trust at all",
            2: "Little trust",
            3: "Some trust",
            4: "A lot of trust",
            5: "Complete trust",
            8: "Don't know",
            9: "Refused",
        },
    ),
    "C4": (
        "French is easy to use in online services",
        {
            1: "Strongly disagree",
            2: "Disagree",
            3: "Neither agree nor disagree",
            4: "Agree",
            5: "Strongly agree",
            8: "Don't know",
            9: "Refused",
        },
    ),
}


def make_custom(df, sub, spec, w):
    sel = df[df["PROV"].isin(spec["juris"])]
    keep = rng.random(len(sel)) < (0.94 if sub == "quebec" else 1.0)  # quebec file misses a few respondents
    sel = sel[keep]
    n = len(sel)
    q1 = sel["Q1"].where(sel["Q1"] < 8, 3).fillna(3).to_numpy()
    base = (q1 - 3) / 1.2
    out = pd.DataFrame({"RESPID": sel["RESPID"].to_numpy()})
    for name, (_lab, labels, kind, _m) in spec["qs"].items():
        lab = {k: (v[0] if isinstance(v, tuple) else v) for k, v in labels.items()}
        if len(lab) == 4:  # yes/no
            x = np.where(rng.random(n) < 0.45 + 0.15 * (kind == "digital") * (w / 4), 1.0, 2.0)
        else:
            x = ordinal(0.3 + (0.7 if kind == "sat" else 0.4) * base + 0.7 * rng.normal(size=n), 5)
        x = add_missing(x, p_dk=0.03, p_ref=0.01, p_sys=0.04)
        out[name] = x
    return out


def custom_meta(spec):
    labels, vlabels, missing, measure, fmt = (
        {"RESPID": "Respondent ID"},
        {},
        {},
        {"RESPID": "nominal"},
        {"RESPID": "F6.0"},
    )
    for name, (lab, labs, _k, m) in spec["qs"].items():
        labels[name] = lab
        vlabels[name] = {k: (v[0] if isinstance(v, tuple) else v) for k, v in labs.items()}
        missing[name] = [8, 9]
        measure[name] = m
        fmt[name] = "F1.0"
    return labels, vlabels, missing, measure, fmt


# --------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------
def tq(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


SUBSCRIBERS = [
    dict(
        id="ontario",
        name="Government of Ontario",
        name_fr="Gouvernement de l'Ontario",
        language="en",
        contacts=["analyst@ontario.example", "research.lead@ontario.example"],
    ),
    dict(
        id="quebec",
        name="Government of Quebec",
        name_fr="Gouvernement du Québec",
        language="fr",
        contacts=["analyste@quebec.example", "recherche@quebec.example"],
    ),
    dict(
        id="british-columbia",
        name="Government of British Columbia",
        name_fr="Gouvernement de la Colombie-Britannique",
        language="en",
        contacts=["analyst@bc.example", "citizen.services@bc.example"],
        custom_prefix="BC_",
    ),
    dict(
        id="maritimes",
        name="Maritime Provinces Service Partnership",
        name_fr="Partenariat des services des provinces maritimes",
        language="en",
        contacts=["analyst@maritimes.example", "coordinator@maritimes.example"],
    ),
]


def write_config(custom_files):
    L = [
        "# wavetool configuration for the sample study (generated by sample_data/generate.py).",
        "# Paths are relative to the folder holding this file.",
        "",
        "[study]",
        'name = "Citizens\' Service Tracking Study"',
        'name_fr = "Étude de suivi des services aux citoyens"',
        "",
        "[columns]",
        'id = "RESPID"',
        'jurisdiction = "PROV"',
        'weight = "WEIGHT"',
        "",
    ]
    for w, s in WAVES.items():
        L += [
            "[[waves]]",
            f"number = {w}",
            f"label = {tq(s['label'])}",
            f"label_fr = {tq(s['label_fr'])}",
            f"fieldwork_start = {s['start']}",
            f"fieldwork_end = {s['end']}",
            f'inbox = "inbox/wave-{w}"',
        ]
        if w == 4:
            L.append('codebook = "inbox/wave-4/wave4-codebook.csv"')
        L.append("")
    L.append("[jurisdictions]")
    for c, (en, fr, _p) in JURIS.items():
        L.append(f"{c} = {{ en = {tq(en)}, fr = {tq(fr)} }}")
    L.append("")
    for s in SUBSCRIBERS:
        spec = CUSTOM[s["id"]]
        L += [
            "[[subscribers]]",
            f'id = "{s["id"]}"',
            f"name = {tq(s['name'])}",
            f"name_fr = {tq(s['name_fr'])}",
            "jurisdictions = [" + ", ".join(f'"{j}"' for j in spec["juris"]) + "]",
            f'language = "{s["language"]}"',
            "contacts = [" + ", ".join(f'"{c}"' for c in s["contacts"]) + "]",
        ]
        if "custom_prefix" in s:
            L.append(f'custom_prefix = "{s["custom_prefix"]}"')
        for w, f, cb in custom_files[s["id"]]:
            L += ["[[subscribers.custom]]", f"wave = {w}", f'file = "{f}"']
            if cb:
                L.append(f'codebook = "{cb}"')
        L.append("")
    L += [
        "[[crosswalk]]",
        'question = "Q5"',
        'variable = "Q5A"',
        "waves = [4]",
        'note = "Q5 (Staff were courteous) was renamed Q5A in the wave-4 export; same wording and codes"',
        "",
        "[[crosswalk]]",
        'question = "Q3"',
        "waves = [3]",
        "labels_reworded = true",
        'note = "Label of code 3 reworded in wave 3 (\\"Neutral\\"); same meaning"',
        "",
    ]
    L.append("[translations.fr]")
    for name in list(OTHER) + list(Q) + list(CHANNELS):
        if name in Q:
            fr, labs = Q[name]["fr"], Q[name]["labels"]
        elif name in CHANNELS:
            fr, labs = CHANNELS[name][1], DICHO
        else:
            fr, labs = OTHER[name][1], OTHER[name][2]
            if name == "PROV":
                labs = None  # jurisdiction names come from [jurisdictions]
            if name == "GENDER":
                labs = {**GENDER_L, 9: DK[9]}
        L.append(f'"{name}" = {tq(fr)}')
        for code, (_en, lfr) in (labs or {}).items():
            L.append(f'"{name}.{code}" = {tq(lfr)}')
    L += ["", "[translations.en]"]
    for name, (en, labs) in QC_EN.items():
        L.append(f'"quebec:{name}" = {tq(en)}')
        for code, lab in labs.items():
            L.append(f'"quebec:{name}.{code}" = {tq(lab)}')
    L += [
        "",
        "[tables]",
        "min_base = 30",
        "confidence = 0.95",
        "# Age groups are ordinal but not an opinion scale: no top/bottom box, mean or SD.",
        "[tables.scales.AGEGRP]",
        "top = []",
        "bottom = []",
        "",
        "[weighting]",
        "max_iterations = 1000",
        "tolerance = 1e-6",
        "trim = [0.2, 5.0]",
        "[weighting.margins.AGEGRP]",
        "1 = 0.27",
        "2 = 0.33",
        "3 = 0.17",
        "4 = 0.23",
        "[weighting.margins.GENDER]",
        "1 = 0.49",
        "2 = 0.505",
        "3 = 0.005",
        "",
        "[report]",
        'output_dir = "reports"',
        "",
        "[delivery]",
        'transport = "outbox"',
        'outbox_dir = "outbox"',
        'from = "Citizens\' Service Study <study@example.org>"',
        'reply_to = "coordinator@example.org"',
        "",
        "[pipeline]",
        "lock_timeout = 60",
        "",
        "[drivers]",
        "# Drivers of overall satisfaction (Q1) among the service attributes: ease, timeliness, outcome, courtesy,",
        "# fairness, competence, knowing what to do, information, getting what was needed.",
        'outcome = "Q1"',
        'attributes = ["Q2", "Q3", "Q4", "Q5", "Q6", "Q7", "Q8", "Q9", "Q10"]',
        "min_base = 100",
        "replicates = 0",
        "seed = 20200601",
        "",
    ]
    (HERE / "wavetool.toml").write_text("\n".join(L), encoding="utf-8")


# --------------------------------------------------------------------------------------------
def main():
    if shutil.which("pspp") is None:
        sys.exit("GNU PSPP (pspp) is required")
    if INBOX.exists():
        shutil.rmtree(INBOX)
    custom_files = {s["id"]: [] for s in SUBSCRIBERS}
    for w in WAVES:
        d = INBOX / f"wave-{w}"
        d.mkdir(parents=True)
        df = make_wave(w)
        if w == 1:
            write_sav(df, d / "wave1.sav", w)
            # pyreadstat cannot write multiple-response sets: let PSPP add $CHANNELS and re-save.
            run_pspp(
                "GET FILE='wave1.sav'.\n"
                "MRSETS /MDGROUP NAME=$CHANNELS LABEL='Channels used in the past 12 months'\n"
                "  VARIABLES=CH_1 CH_2 CH_3 CH_4 CH_5 CH_6 VALUE=1.\n"
                "SAVE OUTFILE='wave1.sav'.\n",
                d,
            )
        elif w == 2:
            write_sav(df, d / "wave2.zsav", w, compress=True)
        elif w == 3:
            write_sav(df, d / "wave3-tmp.sav", w)
            run_pspp("GET FILE='wave3-tmp.sav'.\nEXPORT OUTFILE='wave3.por'.\n", d)
            (d / "wave3-tmp.sav").unlink()
        else:
            write_csv(df, d / "wave4.csv")
            write_codebook(codebook_rows(df, *meta_for(df, w)), d / "wave4-codebook.csv")
        for sub, spec in CUSTOM.items():
            if w not in spec["waves"]:
                continue
            cdf = make_custom(df, sub, spec, w)
            labels, vlabels, missing, measure, fmt = custom_meta(spec)
            if spec["fmt"] == "sav":
                f = d / f"custom-{sub}.sav"
                pyreadstat.write_sav(
                    cdf,
                    str(f),
                    file_label=f"Questions personnalisées - {sub} - vague {w}",
                    column_labels=labels,
                    variable_value_labels=vlabels,
                    missing_ranges=missing,
                    variable_measure=measure,
                    variable_format=fmt,
                )
                custom_files[sub].append((w, f"inbox/wave-{w}/{f.name}", None))
            else:
                f = d / f"custom-{sub}.csv"
                write_csv(cdf, f)
                cb = d / f"custom-{sub}-codebook.csv"
                write_codebook(codebook_rows(cdf, labels, vlabels, missing, measure, fmt), cb)
                custom_files[sub].append((w, f"inbox/wave-{w}/{f.name}", f"inbox/wave-{w}/{cb.name}"))
        for f in sorted(d.iterdir()):
            if f.suffix in (".sav", ".zsav", ".por"):
                stamp(f, w)
        print(f"wave {w}: {len(df)} respondents, {df.shape[1]} columns")
    write_config(custom_files)
    print("wrote", HERE / "wavetool.toml")


if __name__ == "__main__":
    main()
