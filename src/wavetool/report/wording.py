"""Words a subscriber reads in more than one place: the benchmark's one definition, the subscriber's name
as it sits in a sentence, and French typography.

The PDF and the e-mail both take the benchmark sentence from :func:`benchmark_sentence`, so the two can
never describe the benchmark differently (a test compares them). ``[report] benchmark_label`` overrides
the catalogue's wording per language.
"""

from __future__ import annotations

import re
from typing import Any

from .text import LOCALES, load_strings, templates_dir

NNBSP = "\u202f"  # narrow no-break space: French puts one before : ; ! ? and inside « »
NBSP = "\u00a0"

# A space (or none) before : ; ! ? that ends a word or a closing quote and is followed by a space, the end,
# or a closing bracket/quote. "12:30", "http://", "{a}:{b}" have no space after the sign and stay as they are.
_BEFORE_SIGN = re.compile(r"(?<=[\w»)\]}%’'\"…])[ \u00a0\u202f]?([:;!?])(?=\s|$|[»)\]])")
_AFTER_OPEN = re.compile(r"«[ \u00a0\u202f]*")
_BEFORE_CLOSE = re.compile(r"[ \u00a0\u202f]*»")


def french_typography(text: str) -> str:
    """``text`` with French spacing: a narrow no-break space before ``: ; ! ?`` and inside ``« »`` (so a
    line never breaks after « or before », nor before the sign)."""
    if not text:
        return text
    text = _BEFORE_SIGN.sub(NNBSP + r"\1", text)
    text = _AFTER_OPEN.sub("«" + NNBSP, text)
    return _BEFORE_CLOSE.sub(NNBSP + "»", text)


def typeset(text: str, language: str) -> str:
    """``text`` with the typography of ``language`` (French spacing; English unchanged)."""
    return french_typography(text) if language == "fr" else text


def subscriber_in_sentence(subscriber: Any, language: str) -> str:
    """The subscriber's name as it reads inside a sentence: the configured ``sentence_name`` /
    ``sentence_name_fr`` ("the Government of Ontario"), else the plain name (the catalogue's sentences are
    worded so that a plain name reads correctly too, e.g. "Results: Government of Ontario")."""
    return subscriber.in_sentence(language) or subscriber.display_name(language)


def place_names(config: Any, subscriber: Any, language: str) -> str:
    """The subscriber's jurisdictions as a list in ``language`` ("Nova Scotia and New Brunswick")."""
    from babel.lists import format_list  # lazy: babel loads its locale data on import

    names = [
        config.jurisdictions[c].name(language) if c in config.jurisdictions else c for c in subscriber.jurisdictions
    ]
    return format_list(names, locale=LOCALES[language])


def benchmark_sentence(config: Any, subscriber: Any, language: str) -> str:
    """The benchmark's definition, one sentence, identical in the PDF and the e-mail."""
    override = config.report.benchmark_label.get(language)
    strings = load_strings(templates_dir(), language)
    everyone_is_theirs = set(config.jurisdictions) <= set(subscriber.jurisdictions)
    template = strings["benchmark_none"] if everyone_is_theirs else override or strings["benchmark_definition"]
    text = template.format(places=place_names(config, subscriber, language))
    return typeset(text, language)
