"""`wavetool init DIR --from FILE`: a commented study configuration seeded from a real export.

The roles (id, jurisdiction, weight) are taken from the options or guessed where only one column fits, and
every guess is said; the jurisdictions come from the value labels (and the codes) of the jurisdiction column,
named from Statistics Canada's standard province and territory codes where the file uses them. The study
name is left as a placeholder that `report`, `run` and `send` refuse, so that no report goes out under a
name nobody chose. The config written imports that file as it is.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from .codebook import Codebook, Variable, code_text
from .config import CONFIG_NAME, NO_WEIGHT, PLACEHOLDER_NAME, ROW_IDS, find_column
from .errors import ConfigError, DataError, InputMissingError
from .ingest.spss import read_spss_codebook
from .status import init_study

# Statistics Canada's Standard Geographical Classification codes of the provinces and territories, with their
# two-letter abbreviations and English and French names.
PROVINCES: tuple[tuple[str, str, str, str], ...] = (
    ("10", "NL", "Newfoundland and Labrador", "Terre-Neuve-et-Labrador"),
    ("11", "PE", "Prince Edward Island", "Île-du-Prince-Édouard"),
    ("12", "NS", "Nova Scotia", "Nouvelle-Écosse"),
    ("13", "NB", "New Brunswick", "Nouveau-Brunswick"),
    ("24", "QC", "Quebec", "Québec"),
    ("35", "ON", "Ontario", "Ontario"),
    ("46", "MB", "Manitoba", "Manitoba"),
    ("47", "SK", "Saskatchewan", "Saskatchewan"),
    ("48", "AB", "Alberta", "Alberta"),
    ("59", "BC", "British Columbia", "Colombie-Britannique"),
    ("60", "YT", "Yukon", "Yukon"),
    ("61", "NT", "Northwest Territories", "Territoires du Nord-Ouest"),
    ("62", "NU", "Nunavut", "Nunavut"),
)
_BY_CODE = {row[0]: row for row in PROVINCES} | {row[1]: row for row in PROVINCES}

# Column names (lower case, without separators) that say what a column holds.
_ROLE_NAMES = {
    "id": {"respid", "respondentid", "respondent", "caseid", "case", "id", "recordid", "record", "serial", "respnum"},
    "jurisdiction": {"prov", "province", "provcode", "pr", "juris", "jurisdiction", "provter", "provterr"},
    "weight": {"weight", "wt", "wgt", "wtfinal", "finalwt", "finalweight", "pond", "ponderation", "poids"},
}
_ROLE_LABELS = {
    "id": ("respondent id", "case id", "identifiant"),
    "jurisdiction": ("province", "jurisdiction", "territoire"),
    "weight": ("weight", "pondération", "ponderation"),
}


@dataclass
class Seed:
    """The config text seeded from a file, and what was guessed (said to the user)."""

    text: str
    roles: dict[str, str]
    jurisdictions: dict[str, tuple[str, str]]
    notes: list[str] = field(default_factory=list)


def _plain(text: str) -> str:
    """Lower case, accents and separators removed: 'Québec' -> 'quebec', 'RESP_ID' -> 'respid'."""
    decomposed = unicodedata.normalize("NFKD", text)
    return re.sub(r"[^a-z0-9]", "", "".join(c for c in decomposed if not unicodedata.combining(c)).lower())


def _read_codebook(path: Path, encoding: str | None) -> Codebook:
    if not path.exists():
        raise InputMissingError(f"{path}: file not found", hint="check the path of the export")
    suffix = path.suffix.lower()
    if suffix in (".sav", ".zsav", ".por"):
        return read_spss_codebook(path, encoding)[0]
    if suffix == ".csv":
        return _csv_header(path)
    raise DataError(f"{path}: not an export wavetool reads", hint="use a .sav, .zsav, .por or .csv file")


def _csv_header(path: Path) -> Codebook:
    """A CSV's columns (it has no labels: a companion codebook gives them at import)."""
    con = duckdb.connect()
    try:
        names = [
            r[0] for r in con.execute("DESCRIBE SELECT * FROM read_csv(?, all_varchar = true)", [str(path)]).fetchall()
        ]
    except duckdb.Error as exc:
        raise DataError(f"{path}: cannot read the CSV header: {exc}", hint="check the file is a CSV export") from None
    finally:
        con.close()
    return Codebook({n: Variable(name=n, type="string") for n in names}, {}, None)


def _column_codes(path: Path, column: str, encoding: str | None) -> list[str]:
    """The distinct codes found in one column of the file (its canonical text: 35.0 -> '35')."""
    import pyreadstat  # lazy: pyreadstat is heavy and only `init --from` reads data here

    suffix = path.suffix.lower()
    if suffix == ".csv":
        con = duckdb.connect()
        try:
            rows = con.execute(
                "SELECT DISTINCT CAST(c AS VARCHAR) FROM (SELECT columns(?) AS c FROM read_csv(?, all_varchar = true))",
                [f"^{re.escape(column)}$", str(path)],
            ).fetchall()
        finally:
            con.close()
        values = [r[0] for r in rows]
    else:
        read = pyreadstat.read_por if suffix == ".por" else pyreadstat.read_sav
        kwargs: dict[str, Any] = {"usecols": [column], "disable_datetime_conversion": True}
        if encoding and suffix != ".por":
            kwargs["encoding"] = encoding
        frame, _ = read(str(path), **kwargs)
        values = frame[column].dropna().unique().tolist()
    codes = {code_text(v).strip() for v in values if v is not None and code_text(v).strip()}
    return sorted(codes, key=lambda c: (len(c), c))


def _guess(codebook: Codebook, role: str) -> tuple[list[str], str]:
    """The columns that could hold ``role``, and why: by name first, else by variable label."""
    by_name = [n for n in codebook.variables if _plain(n) in _ROLE_NAMES[role]]
    if by_name:
        return by_name, "named like"
    by_label = [
        n
        for n, v in codebook.variables.items()
        if v.label and any(word in v.label.lower() for word in _ROLE_LABELS[role])
    ]
    if role == "jurisdiction":
        # A column whose value labels are provinces is the jurisdiction, whatever its name.
        by_label += [
            n
            for n, v in codebook.variables.items()
            if n not in by_label and sum(_province_of(c, lbl) is not None for c, lbl in v.value_labels.items()) >= 2
        ]
    return by_label, "labelled like"


def _province_of(code: str, label: str | None) -> tuple[str, str, str, str] | None:
    """The Statistics Canada province or territory this code means, or None: the code is one of the standard
    ones and its label (if any) agrees."""
    row = _BY_CODE.get(code.strip().upper())
    if row is None:
        return None
    if not label:
        return row
    plain = _plain(label)
    return row if plain in {_plain(row[1]), _plain(row[2]), _plain(row[3]), _plain(row[0])} else None


OPT_OUTS = {
    "id": (ROW_IDS, "row numbers are the ids (one file a wave)"),
    "weight": (NO_WEIGHT, "unweighted: every respondent weighs 1"),
}
OPT_OUT_HINTS = {
    "id": "--id COLUMN, or --id row (row numbers as ids)",
    "jurisdiction": "--jurisdiction COLUMN, or --jurisdiction-code CODE (every respondent in that jurisdiction)",
    "weight": "--weight COLUMN, or --weight none (unweighted)",
}


def _roles(codebook: Codebook, path: Path, given: dict[str, str | None], notes: list[str]) -> dict[str, str]:
    roles = {}
    for role in ("id", "jurisdiction", "weight"):
        if role == "jurisdiction" and given.get("jurisdiction_code"):
            roles["jurisdiction_code"] = str(given["jurisdiction_code"]).strip()
            notes.append(f"jurisdiction_code = {roles['jurisdiction_code']} (every respondent is in that jurisdiction)")
            continue
        if given.get(role):
            column = find_column(list(codebook.variables), given[role] or "")
            opt_out, meaning = OPT_OUTS.get(role, (None, ""))
            if column is None and opt_out and (given[role] or "").lower() == opt_out:
                roles[role] = opt_out
                notes.append(f"{role} = {opt_out} ({meaning})")
                continue
            if column is None:
                raise DataError(
                    f"{path}: no column {given[role]!r} for the {role} (columns: {', '.join(list(codebook.variables)[:12])})",
                    hint=f"pass {OPT_OUT_HINTS[role]}",
                )
            roles[role] = column
            continue
        candidates, how = _guess(codebook, role)
        if len(candidates) != 1:
            found = f"candidates: {', '.join(candidates)}" if candidates else "no column is named or labelled like one"
            raise DataError(
                f"{path}: cannot tell which column holds the {role} ({found})",
                hint=f"pass {OPT_OUT_HINTS[role]} to `wavetool init --from`",
            )
        roles[role] = candidates[0]
        article = "an" if role == "id" else "a"
        notes.append(f"guessed {role} = {candidates[0]} (the only column {how} {article} {role} column)")
    return roles


def _one_jurisdiction(code: str) -> dict[str, tuple[str, str]]:
    """The jurisdiction of ``jurisdiction_code``: named from Statistics Canada's codes where it is one."""
    province = _province_of(code, None)
    return {code: (province[2], province[3]) if province else (code, code)}


def _jurisdictions(
    codebook: Codebook, path: Path, column: str, encoding: str | None, notes: list[str]
) -> dict[str, tuple[str, str]]:
    labels = codebook.variables[column].value_labels
    missing = {m.code for m in codebook.variables[column].missing if m.code is not None}
    codes = [c for c in labels if c not in missing]
    codes += [c for c in _column_codes(path, column, encoding) if c not in labels and c not in missing]
    result: dict[str, tuple[str, str]] = {}
    named, own = 0, []
    for code in codes:
        province = _province_of(code, labels.get(code))
        if province:
            result[code] = (province[2], province[3])
            named += 1
        else:
            name = labels.get(code) or code
            result[code] = (name, name)
            own.append(code)
    source = f"the value labels and codes of {column}"
    if named:
        notes.append(f"{len(result)} jurisdictions from {source}; {named} named from Statistics Canada's codes")
    else:
        notes.append(f"{len(result)} jurisdictions from {source}")
    if own:
        notes.append(
            f"jurisdictions {', '.join(own[:8])}{' …' if len(own) > 8 else ''}: French name = the file's label; translate it"
        )
    return result


def _q(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(text, ensure_ascii=False)


def seed_config(
    path: Path,
    *,
    id_column: str | None = None,
    jurisdiction_column: str | None = None,
    weight_column: str | None = None,
    jurisdiction_code: str | None = None,
    encoding: str | None = None,
) -> Seed:
    """The commented configuration for a study whose first export is ``path``. The opt-outs of a file
    without an id, weight or jurisdiction column: ``id_column="row"``, ``weight_column="none"``,
    ``jurisdiction_code="CODE"``."""
    path = Path(path)
    if jurisdiction_column and jurisdiction_code:
        raise ConfigError(
            "give the jurisdiction column or one jurisdiction code for the whole file, not both",
            hint="drop --jurisdiction or --jurisdiction-code",
        )
    codebook = _read_codebook(path, encoding)
    notes: list[str] = []
    given = {
        "id": id_column,
        "jurisdiction": jurisdiction_column,
        "weight": weight_column,
        "jurisdiction_code": jurisdiction_code,
    }
    roles = _roles(codebook, path, given, notes)
    if "jurisdiction_code" in roles:
        jurisdictions = _one_jurisdiction(roles["jurisdiction_code"])
    else:
        jurisdictions = _jurisdictions(codebook, path, roles["jurisdiction"], encoding, notes)
    return Seed(_render(path, roles, jurisdictions, notes), roles, jurisdictions, notes)


def _jurisdiction_role(roles: dict[str, str]) -> str:
    if "jurisdiction_code" in roles:
        return f"jurisdiction_code = {_q(roles['jurisdiction_code'])}   # the file has no jurisdiction column"
    return f"jurisdiction = {_q(roles['jurisdiction'])}"


def _jurisdictions_source(roles: dict[str, str]) -> str:
    if "jurisdiction_code" in roles:
        return "the one jurisdiction of every respondent (add the others a later file brings)"
    return f"the codes of the {roles['jurisdiction']} column"


def _render(path: Path, roles: dict[str, str], jurisdictions: dict[str, tuple[str, str]], notes: list[str]) -> str:
    said = "\n".join(f"#   {note}" for note in notes)
    juris = "\n".join(f"{_q(code)} = {{ en = {_q(en)}, fr = {_q(fr)} }}" for code, (en, fr) in jurisdictions.items())
    first = next(iter(jurisdictions), "CODE")
    waves = "\n".join(
        f'[[waves]]\nnumber = {n}\nlabel = "Wave {n}"\nlabel_fr = "Vague {n}"\n# fieldwork_start = 2020-06-01\n'
        f'# fieldwork_end = 2020-06-21\n# inbox = "inbox/wave-{n}"\n'
        for n in (1, 2, 3, 4)
    )
    return f"""# wavetool study configuration, seeded by `wavetool init --from {path.name}`.
# What wavetool guessed from the file or was told (check it):
{said}
# Every section is validated when a command starts; an unknown key is an error naming this file and the key.

[study]
# The title of every report and e-mail. `report`, `run` and `send` refuse to work until you set it.
name = {_q(PLACEHOLDER_NAME)}
# name_fr = "Nom de l'étude"

# Which columns hold the respondent id, the jurisdiction and the final weight (names as in the file;
# SPSS names match whatever their case). `wavetool import --id/--jurisdiction/--weight` overrides them
# for one import; a [waves.columns] table for one wave.
[columns]
id = {_q(roles["id"])}
{_jurisdiction_role(roles)}
weight = {_q(roles["weight"])}

# The waves of the study. `inbox` is the folder `wavetool run` imports the wave's files from. Give each wave
# its fieldwork dates before rendering its reports: the cover shows them.
{waves}
# Jurisdictions: {_jurisdictions_source(roles)} -> English and French names.
[jurisdictions]
{juris}

# Subscribers get a report on their jurisdictions. id: lowercase letters, digits and hyphens.
# [[subscribers]]
# id = "first-subscriber"
# name = "Government of ..."
# name_fr = "Gouvernement de ..."
# jurisdictions = [{_q(first)}]
# language = "en"               # or "fr"
# contacts = ["research@example.org"]

# Texts in the other language: question -> text; question.code -> one answer; [translations.fr.scales]:
# an answer text -> its translation, for every question using that answer.
# [translations.fr]
# Q1 = "Dans l'ensemble, quelle est votre satisfaction ..."
# [translations.fr.scales]
# "Very satisfied" = "Très satisfait"

[tables]
min_base = 30                   # unweighted base under which a figure is withheld
confidence = 0.95

[report]
output_dir = "reports"

[delivery]
transport = "outbox"            # "outbox" (writes .eml files) or "smtp"
outbox_dir = "outbox"
from = "wavetool <study@example.org>"

[pipeline]
lock_timeout = 60
"""


def init_from(
    folder: Path,
    path: Path,
    *,
    id_column: str | None = None,
    jurisdiction_column: str | None = None,
    weight_column: str | None = None,
    jurisdiction_code: str | None = None,
    encoding: str | None = None,
) -> dict[str, Any]:
    """Create the study ``folder`` with a config seeded from ``path`` and an empty database. An existing
    config is never overwritten (ConfigError)."""
    folder = Path(folder)
    if (folder / CONFIG_NAME).exists():
        raise ConfigError(
            f"{(folder / CONFIG_NAME).absolute()}: a study configuration exists already; `init --from` never overwrites it",
            hint="choose a new folder, or edit the existing wavetool.toml",
        )
    seed = seed_config(
        path,
        id_column=id_column,
        jurisdiction_column=jurisdiction_column,
        weight_column=weight_column,
        jurisdiction_code=jurisdiction_code,
        encoding=encoding,
    )
    result = init_study(folder, config_text=seed.text)
    return result | {
        "from": str(path),
        "roles": seed.roles,
        "jurisdictions": {code: {"en": en, "fr": fr} for code, (en, fr) in seed.jurisdictions.items()},
        "notes": seed.notes,
    }
