"""Codebook drift between waves: the diff, the gate's verdict, review and approval. The only writer of
``waves.review_status`` and ``waves.drift``."""

from __future__ import annotations

import json
from typing import Any

import duckdb

from .codebook.gate import _previous_wave, drift_summary
from .codebook.harmonise import _recode_for, in_study_coding, known_questions, question_map
from .codebook.model import Variable
from .codebook.persist import load_codebook, set_questions
from .context import QUIET, Context
from .errors import ExitCode, InputMissingError
from .sql import code_text
from .store import first_row, read_store, transaction, write_store

# --- drift between waves: diff, the gate, review and approval ------------------------------------
#
# Waves are compared question by question (the study-level identity, crosswalk renames applied), in
# the study's coding (crosswalk recodes applied). Measurement levels, formats, widths and MR sets are
# not compared: they differ with the export format (a .por keeps no measure, a CSV no MR set) and do
# not change what an answer means.


DRIFT_KINDS = (
    "added",
    "dropped",
    "renamed",
    "type changed",
    "label changed",
    "value label changed",
    "code added",
    "code removed",
    "missing codes changed",
    "recoded",
)


def _question_view(con: duckdb.DuckDBPyConnection, config: Any, wave: int) -> dict[str, tuple[str, Variable]]:
    """question -> (variable name, harmonised Variable) for every non-role column of a stored wave."""
    book = load_codebook(con, wave)
    view = {}
    for name, question in con.execute(
        "SELECT name, question FROM variables WHERE wave = ? AND book = '' AND role IS NULL ORDER BY position", [wave]
    ).fetchall():
        view[question] = (name, in_study_coding(book.variables[name], _recode_for(config, question, wave)))
    return view


def _entry_text(entry: Any) -> str:
    if entry.note:
        return entry.note
    parts = [f"question {entry.question}", f"waves {list(entry.waves)}"]
    if entry.variable:
        parts.insert(1, f"variable {entry.variable}")
    if entry.recode:
        parts.append("recode")
    if entry.labels_reworded:
        parts.append("labels reworded")
    return "crosswalk " + ", ".join(parts) + f" (v{entry.version})"


def _crosswalk_note(
    config: Any, question: str, waves: tuple[int, int], kind: str, variables: tuple[str, ...] = ()
) -> str | None:
    """The crosswalk entry (as text) that explains a ``kind`` of change of ``question`` between two waves."""
    for entry in config.crosswalk:
        if entry.question.casefold() != question.casefold() or not set(entry.waves) & set(waves):
            continue
        if kind == "renamed" and entry.variable and entry.variable.casefold() in {v.casefold() for v in variables}:
            return _entry_text(entry)
        if kind == "reworded" and entry.labels_reworded:
            return _entry_text(entry)
        if kind == "recoded" and entry.recode:
            return _entry_text(entry)
    return None


def _norm(text: str | None) -> str:
    return " ".join((text or "").lower().split())


def _record(
    question: str,
    change: str,
    detail: str,
    a: int,
    b: int,
    var_a: str | None,
    var_b: str | None,
    explained_by: str | None = None,
    gates: bool | None = None,
    suggestion: str | None = None,
) -> dict[str, Any]:
    return {
        "question": question,
        "change": change,
        "detail": detail,
        "explained_by": explained_by,
        "gates": (explained_by is None) if gates is None else gates,
        "wave_a": a,
        "wave_b": b,
        "variable_a": var_a,
        "variable_b": var_b,
        "suggestion": suggestion,
    }


def _fmt_labels(labels: dict[str, str], codes: list[str]) -> str:
    return ", ".join(f"{c} {labels[c]!r}" for c in codes)


def _compare_question(
    config: Any, question: str, a: int, b: int, var_a: str, old: Variable, var_b: str, new: Variable
) -> list[dict[str, Any]]:
    """Every difference of one question between wave ``a`` and wave ``b``."""
    out = []
    rec = lambda change, detail, note=None, gates=None: out.append(  # noqa: E731
        _record(question, change, detail, a, b, var_a, var_b, note, gates)
    )
    if var_a.casefold() != var_b.casefold():  # SPSS names ignore case: q1 (.sav) is Q1 (.por), no rename
        rec(
            "renamed",
            f"variable {var_a} in wave {a} is {var_b} in wave {b}",
            _crosswalk_note(config, question, (a, b), "renamed", (var_a, var_b)),
        )
    recodes = {w: _recode_for(config, question, w) for w in (a, b)}
    if recodes[a] != recodes[b]:
        shown = "; ".join(
            f"wave {w}: " + ", ".join(f"{code_text(k)}→{code_text(v)}" for k, v in r.items())
            for w, r in recodes.items()
            if r
        )
        rec(
            "recoded",
            f"codes recoded to the study's coding ({shown})",
            _crosswalk_note(config, question, (a, b), "recoded"),
            False,
        )
    if old.type != new.type:
        rec("type changed", f"{old.type} in wave {a}, {new.type} in wave {b}")
    reworded = _crosswalk_note(config, question, (a, b), "reworded")
    if _norm(old.label) != _norm(new.label):
        rec("label changed", f"{old.label!r} in wave {a}, {new.label!r} in wave {b}", reworded)
    removed = [c for c in old.value_labels if c not in new.value_labels]
    added = [c for c in new.value_labels if c not in old.value_labels]
    if removed:
        rec("code removed", f"{_fmt_labels(old.value_labels, removed)} not in wave {b}")
    if added:
        rec("code added", f"{_fmt_labels(new.value_labels, added)} new in wave {b}")
    for code in old.value_labels:
        if code in new.value_labels and _norm(old.value_labels[code]) != _norm(new.value_labels[code]):
            rec(
                "value label changed",
                f"code {code}: {old.value_labels[code]!r} in wave {a}, {new.value_labels[code]!r} in wave {b}",
                reworded,
            )
    old_missing = sorted(s.describe() for s in old.missing)
    new_missing = sorted(s.describe() for s in new.missing)
    if old_missing != new_missing:
        rec(
            "missing codes changed",
            f"{', '.join(old_missing) or 'none'} in wave {a}, {', '.join(new_missing) or 'none'} in wave {b}",
        )
    return out


def diff_waves(con: duckdb.DuckDBPyConnection, config: Any, a: int, b: int) -> list[dict[str, Any]]:
    """Per question, how wave ``b``'s codebook differs from wave ``a``'s: added, dropped, renamed (with the
    crosswalk entry that explains it, or a suggestion when the label matches), type, label, value-label,
    code and missing-code changes. Each record says whether it ``gates`` (changes an existing question
    without a crosswalk explanation) and what ``explained_by`` it."""
    for wave in (a, b):
        if not con.execute("SELECT 1 FROM waves WHERE wave = ?", [wave]).fetchall():
            raise InputMissingError(
                f"wave {wave} is not imported", hint=f"run `wavetool import --wave {wave} FILE` first"
            )
    old_view, new_view = _question_view(con, config, a), _question_view(con, config, b)
    records: list[dict[str, Any]] = []
    dropped = [q for q in old_view if q not in new_view]
    added = [q for q in new_view if q not in old_view]
    for question, (var_a, old) in old_view.items():
        if question in new_view:
            var_b, new = new_view[question]
            records.extend(_compare_question(config, question, a, b, var_a, old, var_b, new))
    for question in dropped:
        var_a, old = old_view[question]
        twin = next(
            (
                q
                for q in added
                if _norm(new_view[q][1].label) == _norm(old.label) and old.label and new_view[q][1].type == old.type
            ),
            None,
        )
        if twin is not None:
            added.remove(twin)
            suggestion = f'[[crosswalk]]\nquestion = "{question}"\nvariable = "{new_view[twin][0]}"\nwaves = [{b}]'
            records.append(
                _record(
                    question,
                    "renamed",
                    f"{var_a} (wave {a}) looks renamed to {new_view[twin][0]} (wave {b}): same label {old.label!r}",
                    a,
                    b,
                    var_a,
                    new_view[twin][0],
                    suggestion=suggestion,
                )
            )
            continue
        records.append(
            _record(question, "dropped", f"{var_a} ({old.label or 'no label'}) is not in wave {b}", a, b, var_a, None)
        )
    for question in added:
        var_b, new = new_view[question]
        # A new question changes no existing one: listed, never gating.
        records.append(
            _record(
                question,
                "added",
                f"{var_b} ({new.label or 'no label'}) is new in wave {b}",
                a,
                b,
                None,
                var_b,
                gates=False,
            )
        )
    order = {q: i for i, q in enumerate([*old_view, *(q for q in new_view if q not in old_view)])}
    records.sort(key=lambda r: (order.get(r["question"], len(order)), DRIFT_KINDS.index(r["change"])))
    return records


def _verdict(con: duckdb.DuckDBPyConnection, config: Any, wave: int) -> tuple[str, list[dict[str, Any]]]:
    previous = _previous_wave(con, wave)
    if previous is None:
        return "approved", []
    records = diff_waves(con, config, previous, wave)
    return ("unreviewed" if any(r["gates"] for r in records) else "approved"), records


def _store_verdict(con: duckdb.DuckDBPyConnection, wave: int, status: str, records: list[dict[str, Any]]) -> None:
    drift = json.dumps(records, ensure_ascii=False, sort_keys=True) if records else None
    con.execute("UPDATE waves SET review_status = ?, drift = ? WHERE wave = ?", [status, drift, wave])


def review_drift(con: duckdb.DuckDBPyConnection, config: Any, wave: int) -> tuple[str, list[dict[str, Any]]]:
    """The drift gate's verdict for ``wave`` against the previous imported wave: ('approved' or
    'unreviewed', every difference found), stored on the wave. Called inside the import transaction; a difference the
    crosswalk explains, or a question added, does not gate. The next imported wave, compared with this
    one, is re-reviewed too (unless a coordinator approved it by hand)."""
    status, records = _verdict(con, config, wave)
    _store_verdict(con, wave, status, records)
    following = first_row(con, "SELECT min(wave) FROM waves WHERE wave > ? AND reviewed_at IS NULL", [wave])
    nearest_next = first_row(con, "SELECT min(wave) FROM waves WHERE wave > ?", [wave])
    if following and following[0] is not None and following[0] == nearest_next[0]:
        _store_verdict(con, following[0], *_verdict(con, config, following[0]))
    return status, records


class Verdicts(list):
    """The drift gate's verdict per wave (a list of dicts); ``exit_code`` is 79 while any wave stays unreviewed."""

    @property
    def exit_code(self) -> int:
        return int(ExitCode.DRIFT_GATE if any(r["review_status"] == "unreviewed" for r in self) else ExitCode.OK)


def review_waves(config: Any, waves: list[int] | None = None) -> Verdicts:
    """Re-run the drift gate with the current crosswalk (after adding an entry): the crosswalk's renames
    are re-applied to the stored question mapping, then every wave is reviewed against the previous one.
    Waves a coordinator approved by hand stay approved."""
    results = Verdicts()
    with (
        write_store(config.root, timeout=config.pipeline.lock_timeout, purpose="wavetool codebook review") as con,
        transaction(con),
    ):
        stored = [r[0] for r in con.execute("SELECT wave FROM waves ORDER BY wave").fetchall()]
        for wave in waves or stored:
            if wave not in stored:
                raise InputMissingError(
                    f"wave {wave} is not imported", hint=f"run `wavetool import --wave {wave} FILE` first"
                )
        for wave in stored:
            names = [
                r[0] for r in con.execute("SELECT name FROM variables WHERE wave = ? AND book = ''", [wave]).fetchall()
            ]
            set_questions(con, wave, question_map(config, wave, names, known_questions(con, wave)))
        for wave in stored:
            manual = first_row(con, "SELECT reviewed_at FROM waves WHERE wave = ?", [wave])[0]
            status, records = _verdict(con, config, wave)
            if manual is not None:
                status = "approved"
            _store_verdict(con, wave, status, records)
            if not waves or wave in waves:
                results.append(
                    {
                        "wave": wave,
                        "review_status": status,
                        "approved_by_hand": manual is not None,
                        "drift": [r for r in records if r["gates"]],
                    }
                )
    return results


def approve_wave(config: Any, wave: int, ctx: Context = QUIET) -> dict[str, Any]:
    """Accept a wave's drift by hand: review_status 'approved', reviewed_at now (the drift is kept)."""

    with write_store(
        config.root, timeout=config.pipeline.lock_timeout, purpose=f"wavetool codebook approve --wave {wave}"
    ) as con:
        row = first_row(con, "SELECT review_status, drift FROM waves WHERE wave = ?", [wave])
        if row is None:
            raise InputMissingError(
                f"wave {wave} is not imported", hint=f"run `wavetool import --wave {wave} FILE` first"
            )
        if row[0] == "approved":  # nothing to accept; a hand approval would also freeze the verdict
            reviewed = first_row(con, "SELECT reviewed_at FROM waves WHERE wave = ?", [wave])[0]
            return {
                "wave": wave,
                "previous_status": "approved",
                "review_status": "approved",
                "reviewed_at": reviewed.isoformat() if reviewed else None,
                "accepted": None,
            }
        now = ctx.now()
        with transaction(con):
            con.execute("UPDATE waves SET review_status = 'approved', reviewed_at = ? WHERE wave = ?", [now, wave])
    return {
        "wave": wave,
        "previous_status": row[0],
        "review_status": "approved",
        "reviewed_at": now.isoformat(),
        "accepted": drift_summary(row[1]) if row[0] == "unreviewed" else None,
    }


def codebook_diff(config: Any, a: int, b: int) -> list[dict[str, Any]]:
    """`wavetool codebook diff A B`: :func:`diff_waves` on the study database."""
    with read_store(config.root) as con:
        return diff_waves(con, config, a, b)
