"""Write the corpus of bad inputs (tests/data/bad/<case>/...) and its manifest, cases.toml.

Each case is what a vendor or a hurried coordinator really sends: truncated or random files, wrong
encodings, ragged rows, duplicate ids, bad weights, unknown codes, custom-question files for the wrong
jurisdiction or wave, broken configs. ``tests/test_bad_inputs.py`` runs every case through the CLI and
checks the one-line error, the exit code and that nothing in the study changed.

Run: ``.venv/bin/python tests/data/bad/generate.py`` (deterministic but for the creation time pyreadstat
writes into a .sav header; the outputs are committed).
"""

from __future__ import annotations

import csv
import io
import random
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pyreadstat

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parents[2] / "sample_data"
WAVE4 = SAMPLE / "inbox" / "wave-4" / "wave4.csv"
CASES: list[dict] = []


def case(
    name: str,
    args: list[str],
    exit_code: int,
    expect: list[str],
    files: dict[str, bytes] | None = None,
    config: str | None = None,
) -> None:
    """Register a case: the CLI args ({case} = the case folder, {study} = the study), the exit code and
    the substrings the one-line error must contain."""
    folder = HERE / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for file_name, data in (files or {}).items():
        (folder / file_name).parent.mkdir(parents=True, exist_ok=True)
        (folder / file_name).write_bytes(data)
    if config is not None:
        (folder / "wavetool.toml").write_text(config, encoding="utf-8")
    CASES.append({"name": name, "args": args, "exit": exit_code, "expect": expect, "config": config is not None})


def wave4_rows(count: int = 60) -> tuple[list[str], list[list[str]]]:
    with open(WAVE4, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = [row for _, row in zip(range(count), reader, strict=False)]
    return header, rows


def to_csv(header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


def with_column(header: list[str], rows: list[list[str]], column: str, value_at: dict[int, str]) -> bytes:
    idx = header.index(column)
    changed = [list(r) for r in rows]
    for row_number, value in value_at.items():
        changed[row_number - 1][idx] = value
    return to_csv(header, changed)


def without_column(header: list[str], rows: list[list[str]], column: str) -> bytes:
    idx = header.index(column)
    return to_csv(
        [h for i, h in enumerate(header) if i != idx], [[v for i, v in enumerate(r) if i != idx] for r in rows]
    )


def to_sav(frame: pd.DataFrame, labels: dict[str, dict[float, str]] | None = None) -> bytes:
    """A real .sav written by pyreadstat (and read back, so a case never holds a file pyreadstat cannot read)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "case.sav"
        pyreadstat.write_sav(frame, str(path), variable_value_labels=labels or {})
        back, _ = pyreadstat.read_sav(str(path))
        assert list(back.columns) == list(frame.columns) and len(back) == len(frame)
        return path.read_bytes()


def wave4_frame(header: list[str], rows: list[list[str]]) -> pd.DataFrame:
    """The wave-4 rows as a frame: numbers where the column holds numbers, text otherwise."""
    frame = pd.DataFrame(rows, columns=header)
    for column in header:
        numbers = pd.to_numeric(frame[column].replace("", None), errors="coerce")
        if numbers.notna().sum() == (frame[column] != "").sum():
            frame[column] = numbers.astype(float)
    return frame


def employee_frame(count: int = 30) -> pd.DataFrame:
    """An IBM "Employee data"-like file: ID, GENDER, JOBCAT (1-3), SALARY; no weight, no jurisdiction."""
    rng = random.Random(7)
    return pd.DataFrame(
        {
            "ID": [float(i) for i in range(1, count + 1)],
            "GENDER": [rng.choice(["m", "f"]) for _ in range(count)],
            "JOBCAT": [float(rng.choice([1, 2, 3])) for _ in range(count)],
            "SALARY": [float(rng.randrange(15000, 90000, 750)) for _ in range(count)],
        }
    )


def role_cases(header: list[str], rows: list[list[str]], good_config: str) -> None:
    """One column, one role; the explicit opt-outs refused where they cannot hold (issue 15)."""
    employee = to_sav(employee_frame(), {"JOBCAT": {1.0: "Clerical", 2.0: "Custodial", 3.0: "Manager"}})
    case(
        "role-same-column-twice",
        [
            "import",
            "--wave",
            "1",
            "--replace",
            "{case}/employee.sav",
            *("--id", "ID", "--jurisdiction", "JOBCAT"),
            *("--weight", "JOBCAT"),
        ],
        65,
        ["employee.sav", "column JOBCAT", "two roles", "jurisdiction and weight", "one column, one role"],
        {"employee.sav": employee},
    )
    wave = to_sav(wave4_frame(header, rows))
    half = len(rows) // 2
    replace = ["import", "--wave", "4", "--replace"]
    case(
        "role-config-same-column",
        [*replace, "{case}/wave.sav"],
        65,
        ["wave.sav", "column RESPID", "two roles", "id and weight"],
        {"wave.sav": wave},
        config=good_config.replace('weight = "WEIGHT"', 'weight = "RESPID"', 1),
    )
    case(
        "role-empty-weight",
        [*replace, "{case}/wave.sav", "--weight", ""],
        65,
        ["wave.sav", "--weight is empty", "--weight none"],
        {"wave.sav": wave},
    )
    case(
        "role-no-weight-column",
        [*replace, "{case}/wave.sav"],
        65,
        ["wave.sav", "no weight column 'WEIGHT'", "--weight none"],
        {"wave.sav": to_sav(wave4_frame(header, rows).drop(columns=["WEIGHT"]))},
    )
    case(
        "role-row-ids-two-files",
        [*replace, "{case}/part1.sav", "{case}/part2.sav", "--id", "row"],
        65,
        ["part2.sav", "--id row", "share ids"],
        {
            "part1.sav": to_sav(wave4_frame(header, rows[:half])),
            "part2.sav": to_sav(wave4_frame(header, rows[half:])),
        },
    )
    case(
        "role-row-ids-custom-questions",
        [*replace, "{case}/wave.sav", "--id", "row"],
        65,
        ["wave.sav", "--id row", "custom questions of", "quebec", "real ids"],
        {"wave.sav": wave},
    )
    case(
        "role-unknown-jurisdiction-code",
        [*replace, "{case}/wave.sav", "--jurisdiction-code", "XX"],
        65,
        ["wave.sav", "jurisdiction code 'XX'", "[jurisdictions]"],
        {"wave.sav": wave},
    )
    case(
        "role-jurisdiction-column-and-code",
        [*replace, "{case}/wave.sav", "--jurisdiction", "PROV", "--jurisdiction-code", "YT"],
        65,
        ["wave.sav", "--jurisdiction PROV", "--jurisdiction-code YT", "keep one"],
        {"wave.sav": wave},
    )
    case(
        "role-code-for-another-file",
        [*replace, "{case}/wave.sav", "--jurisdiction-code", "other.sav=YT"],
        65,
        ["wave.sav", "other.sav", "names no file"],
        {"wave.sav": wave},
    )
    case(
        "role-config-empty-weight",
        ["status"],
        78,
        ["wavetool.toml", "columns.weight", "is empty", '"none"'],
        config=good_config.replace('weight = "WEIGHT"', 'weight = ""', 1),
    )


def main() -> None:
    rng = random.Random(20201130)
    header, rows = wave4_rows()
    sav = (SAMPLE / "inbox" / "wave-1" / "wave1.sav").read_bytes()
    imp = ["import", "--wave", "4"]

    case(
        "truncated-sav",
        ["import", "--wave", "1", "{case}/wave1.sav"],
        65,
        ["wave1.sav", "SPSS"],
        {"wave1.sav": sav[: len(sav) * 6 // 10]},
    )
    case(
        "random-bytes-sav",
        ["import", "--wave", "1", "{case}/export.sav"],
        65,
        ["export.sav", "SPSS"],
        {"export.sav": bytes(rng.randrange(256) for _ in range(4096))},
    )
    case("empty-file", [*imp, "{case}/wave4.csv"], 65, ["wave4.csv", "empty"], {"wave4.csv": b""})

    latin = [list(r) for r in rows]
    comment = header.index("COMMENT")
    latin[2][comment] = "Le service était « très » lent, déçu."
    case(
        "latin1-csv-without-encoding",
        [*imp, "{case}/wave4.csv"],
        65,
        ["wave4.csv", "UTF-8", "--encoding"],
        {"wave4.csv": to_csv(header, latin, encoding="latin-1")},
    )

    ragged = to_csv(header, rows).decode().splitlines()
    ragged[7] = ragged[7] + ",extra,fields"
    case(
        "ragged-csv", [*imp, "{case}/wave4.csv"], 65, ["wave4.csv"], {"wave4.csv": ("\n".join(ragged) + "\n").encode()}
    )
    case(
        "header-only-csv",
        [*imp, "{case}/wave4.csv"],
        65,
        ["wave4.csv", "no data rows"],
        {"wave4.csv": to_csv(header, [])},
    )

    dup = [list(r) for r in rows]
    dup[9][0] = dup[3][0]
    case(
        "duplicate-ids",
        [*imp, "{case}/wave4.csv"],
        65,
        ["wave4.csv", "RESPID", dup[3][0], "row"],
        {"wave4.csv": to_csv(header, dup)},
    )
    for role, column in (("id", "RESPID"), ("jurisdiction", "PROV"), ("weight", "WEIGHT")):
        case(
            f"missing-{role}-column",
            [*imp, "{case}/wave4.csv"],
            65,
            ["wave4.csv", column, f"--{role}"],
            {"wave4.csv": without_column(header, rows, column)},
        )
    for name, value in (("negative", "-1.5"), ("zero", "0"), ("nan", "NaN")):
        case(
            f"{name}-weight",
            [*imp, "{case}/wave4.csv"],
            65,
            ["wave4.csv", "WEIGHT", "row 5"],
            {"wave4.csv": with_column(header, rows, "WEIGHT", {5: value})},
        )
    case(
        "unknown-jurisdiction",
        [*imp, "{case}/wave4.csv"],
        65,
        ["wave4.csv", "PROV", "XX", "row 12"],
        {"wave4.csv": with_column(header, rows, "PROV", {12: "XX"})},
    )
    case(
        "bad-numeric-value",
        [*imp, "{case}/wave4.csv"],
        65,
        ["wave4.csv", "Q1", "line 8"],
        {"wave4.csv": with_column(header, rows, "Q1", {7: "five"})},
    )

    # Custom questions: Ontario's wave-1 file whose ids are Quebec respondents, and the same file for wave 2.
    ontario = (SAMPLE / "inbox" / "wave-1" / "custom-ontario.csv").read_text(encoding="utf-8").splitlines()
    codebook = (SAMPLE / "inbox" / "wave-1" / "custom-ontario-codebook.csv").read_bytes()
    case(
        "custom-wrong-jurisdiction",
        [
            "custom",
            "merge",
            "{case}/custom-ontario.csv",
            "--subscriber",
            "quebec",
            "--wave",
            "1",
            "--codebook",
            "{case}/custom-ontario-codebook.csv",
        ],
        65,
        ["custom-ontario.csv", "quebec"],
        {"custom-ontario.csv": ("\n".join(ontario) + "\n").encode(), "custom-ontario-codebook.csv": codebook},
    )
    case(
        "custom-wrong-wave",
        [
            "custom",
            "merge",
            "{case}/custom-ontario.csv",
            "--subscriber",
            "ontario",
            "--wave",
            "2",
            "--codebook",
            "{case}/custom-ontario-codebook.csv",
        ],
        65,
        ["custom-ontario.csv", "wave 2"],
        {"custom-ontario.csv": ("\n".join(ontario) + "\n").encode(), "custom-ontario-codebook.csv": codebook},
    )

    good = (SAMPLE / "wavetool.toml").read_text(encoding="utf-8")
    case(
        "config-unknown-key",
        ["status"],
        78,
        ["wavetool.toml", "study.nmae", "unknown key"],
        config=good.replace("[study]\n", '[study]\nnmae = "typo"\n', 1),
    )
    first_sub = good.index("[[subscribers]]")
    block_end = good.index("[[subscribers]]", first_sub + 1)
    block = good[first_sub:block_end]
    block_plain = block.split("[[subscribers.custom]]")[0]
    case(
        "config-duplicate-subscriber",
        ["status"],
        78,
        ["wavetool.toml", "duplicate subscriber id"],
        config=good + "\n" + block_plain,
    )
    sub_id = block.split('id = "', 1)[1].split('"', 1)[0]
    case(
        "config-path-traversal-id",
        ["status"],
        78,
        ["wavetool.toml", "../../etc", "not a safe id"],
        config=good.replace(f'id = "{sub_id}"', 'id = "../../etc"', 1),
    )
    contact = block.split('contacts = ["', 1)[1].split('"', 1)[0]
    case(
        "config-invalid-email",
        ["status"],
        78,
        ["wavetool.toml", "not-an-address", "e-mail"],
        config=good.replace(contact, "not-an-address", 1),
    )

    role_cases(header, rows, good)

    # A coordinator's own report template that uses a variable the report does not have. The files under
    # the case's study/ folder are copied into the study before the command runs.
    template = (HERE.parents[2] / "templates" / "report.html.j2").read_text(encoding="utf-8")
    marker = "<body"
    broken = template.replace(marker, "{{ m.subscriber_nickname }}" + marker, 1)
    assert broken != template
    case(
        "template-missing-variable",
        ["report", "--wave", "1"],
        78,
        ["report.html.j2", "line", "subscriber_nickname", "template"],
        {"study/my-templates/report.html.j2": broken.encode()},
        config=good.replace("[report]\n", '[report]\ntemplates = "my-templates"\n', 1),
    )

    lines = ["# Generated by generate.py: the bad-input corpus. Do not edit by hand.", ""]
    for c in CASES:
        lines += [
            "[[case]]",
            f'name = "{c["name"]}"',
            "args = [" + ", ".join(f'"{a}"' for a in c["args"]) + "]",
            f"exit = {c['exit']}",
            "expect = [" + ", ".join('"' + e.replace('"', '\\"') + '"' for e in c["expect"]) + "]",
            f"config = {'true' if c['config'] else 'false'}",
            "",
        ]
    (HERE / "cases.toml").write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {len(CASES)} cases to {HERE}")


if __name__ == "__main__":
    main()
