"""The codebook: variable and value labels, user-missing codes, measurement levels and multiple-response
sets, as read from a file's dictionary (``companion``) and kept as data in the study database
(``persist``), with one study-level identity per question across waves (``harmonise``) and the stored
drift gate (``gate``). Drift review lives above it in :mod:`wavetool.drift`, texts in
:mod:`wavetool.texts`."""

from ..sql import code_text
from .companion import from_pyreadstat, read_codebook_file
from .gate import drift_summary, ensure_reviewed
from .harmonise import (
    core_variables,
    harmonised_codebook,
    harmonised_columns,
    harmonised_select,
    in_study_coding,
    question_map,
)
from .model import CORE_LANGUAGE, MEASURES, TYPES, Codebook, MissingSpec, MrSet, Variable, is_missing_code
from .persist import codebook_rows, load_codebook, save_codebook

__all__ = [
    "CORE_LANGUAGE",
    "MEASURES",
    "TYPES",
    "Codebook",
    "MissingSpec",
    "MrSet",
    "Variable",
    "code_text",
    "codebook_rows",
    "core_variables",
    "drift_summary",
    "ensure_reviewed",
    "from_pyreadstat",
    "harmonised_codebook",
    "harmonised_columns",
    "harmonised_select",
    "in_study_coding",
    "is_missing_code",
    "load_codebook",
    "question_map",
    "read_codebook_file",
    "save_codebook",
]
