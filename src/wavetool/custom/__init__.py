"""Custom questions owned by one subscriber: merged from a file keyed by respondent id, or found as
prefix columns (``custom_prefix``) in the main wave file.

"Not asked" is not "missing": only respondents of the subscriber's jurisdictions were asked. They are
the only rows of :func:`custom_select`; an eligible respondent without an answer is NULL (or keeps the
user-missing code the file gave). Everything here is keyed by subscriber, so one subscriber's questions
and answers never appear in a query run for another.

``merge`` writes a subscriber's merged answers and codebook; ``query`` reads them (the only SQL that
selects custom answers, always for one subscriber)."""

from __future__ import annotations

from .merge import MergeResult, merge_custom, merge_from_config, remove_custom
from .query import (
    CustomQuestion,
    custom_questions,
    custom_select,
    custom_table,
    list_custom,
    missing_sql,
    unmatched_custom_answers,
)

__all__ = [
    "CustomQuestion",
    "MergeResult",
    "custom_questions",
    "custom_select",
    "custom_table",
    "list_custom",
    "merge_custom",
    "merge_from_config",
    "missing_sql",
    "remove_custom",
    "unmatched_custom_answers",
]
