"""Texts in English and French: translations of question and value-label texts, and the gaps in them
(core questions and every subscriber's custom questions)."""

from __future__ import annotations

from typing import Any

from .codebook.harmonise import harmonised_codebook
from .codebook.model import CORE_LANGUAGE, Variable
from .config import LANGUAGES, by_name
from .custom import custom_questions
from .errors import ExitCode
from .store import read_store


def translated(
    config: Any, language: str, key: str, source_text: str | None, source_language: str = CORE_LANGUAGE
) -> str | None:
    """The text of a question or value label in ``language``: the source text when it is already in that
    language, else the config's ``[translations.<language>]`` entry for ``key`` ("Q1", "Q1.1" for code 1,
    "quebec:C1" and "quebec:C1.1" for a subscriber's custom question; matched whatever the case, as SPSS
    names are), else, for a value label, the ``[translations.<language>.scales]`` entry for its source text
    (one entry per answer of a shared scale), else None."""
    if language == source_language:
        return source_text or None
    own = by_name(config.translations.get(language) or {}, key)
    if own:
        return own
    if source_text and "." in key:  # value-label keys are QUESTION.CODE
        scales = (getattr(config, "scale_translations", None) or {}).get(language) or {}
        return scales.get(source_text) or scales.get(source_text.strip()) or None
    return None


def set_title(config: Any, language: str, key: str, label: str | None, item_texts: list[str]) -> str:
    """A multiple-response set's title in ``language``: its ``[translations]`` entry ("$CHANNELS"), else in
    the core language its own label, else the beginning its item texts share ("Channel used: In person",
    "Channel used: Telephone" -> "Channel used"), else its name without the ``$``."""
    configured = by_name(config.translations.get(language) or {}, key)
    if configured:
        return configured
    if language == CORE_LANGUAGE and label:
        return label
    heads = {text.rsplit(":", 1)[0].strip() for text in item_texts if ":" in text}
    if len(heads) == 1 and item_texts and all(":" in text for text in item_texts):
        return heads.pop()
    return key.split(":")[-1].lstrip("$").capitalize()


def _text_items(key: str, var: Variable) -> list[tuple[str, str, str | None]]:
    items = [("question", key, var.label)]
    items += [("value label", f"{key}.{code}", label) for code, label in var.value_labels.items()]
    return items


class Gaps(list):
    """The texts lacking a translation (a list of dicts). With ``strict``, ``exit_code`` is 65 when any lacks one."""

    strict: bool = False

    @property
    def exit_code(self) -> int:
        return int(ExitCode.DATA if self.strict and self else ExitCode.OK)


def translation_gaps(config: Any, strict: bool = False) -> Gaps:
    """Every core question, value label and subscriber custom question (of the imported waves) lacking
    an English or a French text: [{owner, kind, key, language, source_language, source_text}]."""
    with read_store(config.root) as con:
        waves = [r[0] for r in con.execute("SELECT wave FROM waves ORDER BY wave").fetchall()]
        core: dict[str, Variable] = {}
        for wave in waves:  # the latest wave's text of each question wins
            core.update(harmonised_codebook(con, config, wave))
        custom: dict[tuple[str, str], tuple[Variable, str]] = {}
        for wave in waves:
            for sub in config.subscribers:
                for cq in custom_questions(con, wave, sub):
                    custom[(sub, cq.question)] = (cq.variable, cq.language)
    items = [
        ("core", key_kind, key, text, CORE_LANGUAGE)
        for q, var in core.items()
        for key_kind, key, text in _text_items(q, var)
    ]
    for (sub, question), (var, language) in custom.items():
        items += [(sub, kind, key, text, language) for kind, key, text in _text_items(f"{sub}:{question}", var)]
    gaps = Gaps()
    gaps.strict = strict
    for owner, kind, key, text, source_language in items:
        for language in LANGUAGES:
            if translated(config, language, key, text, source_language) is None:
                gaps.append(
                    {
                        "owner": owner,
                        "kind": kind,
                        "key": key,
                        "language": language,
                        "source_language": source_language,
                        "source_text": text,
                    }
                )
    return gaps
