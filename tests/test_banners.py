"""Banner tables and data books: column percents, bases and means against pandas on the rows of
`wavetool export`; the column-test letters against an independent implementation of the documented
test; the .xlsx read back with openpyxl; the book sent with the report over a real SMTP server.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
import sqlite3
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from mailhelpers import pdf_bytes, set_delivery, smtp_block, smtp_server, write_reports  # noqa: F401
from wavetool.config import load_config, parse_config
from wavetool.custom import merge_from_config
from wavetool.databook import book_path, write_databook
from wavetool.errors import ConfigError
from wavetool.stats import tabulate

WAVE = 4
BANNERS = ["AGEGRP", "GENDER"]
AGE_CODES = {"1": [1], "2": [2], "3": [3], "4": [4], "18–54": [1, 2]}
GENDER_CODES = {"1": [1], "2": [2], "3": [3]}
VALID = [1, 2, 3, 4, 5]  # Q1..Q28's valid codes (8, 9 are user-missing)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory, _imported_template: Path) -> Path:
    import shutil

    dest = tmp_path_factory.mktemp("banners") / "study"
    shutil.copytree(_imported_template, dest)
    (dest / ".wavetool.lock").unlink(missing_ok=True)
    merge_from_config(load_config(dest))
    return dest


@pytest.fixture(scope="module")
def exported(study: Path) -> pd.DataFrame:
    """Wave 4's rows as `wavetool export` writes them: everyone's, with Quebec's custom questions beside."""
    from wavetool.cli import main

    frames = []
    for who in ([], ["--subscriber", "quebec"]):
        out = study / f"export{len(who)}.csv"
        assert main(["--study", str(study), "export", "--wave", str(WAVE), *who, "--output", str(out)]) == 0
        frames.append(pd.read_csv(out))
    everyone, quebec = frames
    custom = [c for c in quebec.columns if c not in everyone.columns]
    return everyone.merge(quebec[["RESPID", *custom]], on="RESPID", how="left")


@pytest.fixture(scope="module")
def tables(study: Path):
    return tabulate(load_config(study), WAVE, scopes=["quebec", "all"], banners=BANNERS)


def column_frame(frame: pd.DataFrame, scope: str, banner: str, code: str) -> pd.DataFrame:
    part = frame[frame["PROV"] == "QC"] if scope == "quebec" else frame
    codes = (AGE_CODES if banner == "AGEGRP" else GENDER_CODES)[code]
    return part[part[banner].isin(codes)]


def test_banner_columns_match_pandas_on_the_exported_rows(study, exported, tables):
    rows = tables.rows_table.to_pandas()
    summaries = tables.summaries_table.to_pandas()
    compared = withheld = 0
    for scope in ("quebec", "all"):
        for banner, codes in (("AGEGRP", AGE_CODES), ("GENDER", GENDER_CODES)):
            for code in codes:
                part = column_frame(exported, scope, banner, code)
                for question in ("Q1", "Q15", "Q28", "C1"):
                    if question == "C1" and scope != "quebec":
                        continue
                    valid = part[part[question].isin(VALID)]
                    s = summaries[
                        (summaries.scope == scope)
                        & (summaries.banner == banner)
                        & (summaries.banner_code == code)
                        & (summaries.question == question)
                    ]
                    assert len(s) == 1, (scope, banner, code, question)
                    s = s.iloc[0]
                    assert s.base_n == len(valid)
                    if len(valid) < 30:
                        assert s.suppressed and math.isnan(s["mean"]) and math.isnan(s.base_weighted)
                        continue
                    w = valid["WEIGHT"]
                    assert s.base_weighted == pytest.approx(w.sum(), rel=1e-12)
                    assert s["mean"] == pytest.approx((w * valid[question]).sum() / w.sum(), rel=1e-12)
                    assert s.topbox == pytest.approx(100 * w[valid[question] >= 4].sum() / w.sum(), rel=1e-12)
                    r = rows[
                        (rows.scope == scope)
                        & (rows.banner == banner)
                        & (rows.banner_code == code)
                        & (rows.question == question)
                    ]
                    for value in VALID:
                        line = r[r.code == str(value)].iloc[0]
                        assert line.n == (valid[question] == value).sum()
                        if line.get("quality") == "F":  # too unreliable (CV): withheld per cell
                            assert math.isnan(line.percent)
                            withheld += 1
                            continue
                        assert line.percent == pytest.approx(
                            100 * w[valid[question] == value].sum() / w.sum(), rel=1e-12
                        )
                    compared += 1
    assert compared > 40 and withheld < compared


def test_total_column_is_the_main_table(study, tables):
    plain = tabulate(load_config(study), WAVE, scopes=["quebec", "all"]).rows_table.to_pandas()
    rows = tables.rows_table.to_pandas()
    total = rows[rows.banner == ""].reset_index(drop=True)
    assert list(total.columns[: len(plain.columns)]) == list(plain.columns)
    assert len(total) == len(plain)
    assert (total["n"].fillna(-1) == plain["n"].fillna(-1)).all()
    assert np.allclose(total["percent"].fillna(-1), plain["percent"].fillna(-1), rtol=1e-13)
    assert set(total["banner_label"]) == {"Total"} and set(total["sig_columns"]) == {""}
    assert list(rows.columns[-7:]) == [
        "banner",
        "banner_code",
        "banner_label",
        "column",
        "sig_columns",
        "topbox_sig_columns",
        "mean_sig_columns",
    ]


# --- the column tests, implemented again from their documentation ----------------------------------


def normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def expected_letters(cells: dict[str, dict], pairs: list[tuple[str, str]], alpha: float, adjust: str) -> dict[str, str]:
    """cells: letter -> {val, se} (testable columns only); the letters each column is higher than."""
    tests = []
    for a, b in pairs:
        if a not in cells or b not in cells:
            continue
        diff = cells[a]["val"] - cells[b]["val"]
        se = math.sqrt(cells[a]["se"] ** 2 + cells[b]["se"] ** 2)
        if diff == 0:
            p = 1.0
        elif se == 0:
            p = 0.0
        else:
            p = 2 * normal_sf(abs(diff) / se)
        tests.append((p, a, b, diff))
    m = len(tests)
    significant = set()
    if adjust == "bonferroni":
        significant = {t for t in tests if t[0] * m < alpha}
    elif adjust == "none":
        significant = {t for t in tests if t[0] < alpha}
    else:  # Benjamini-Hochberg step-up
        ordered = sorted(tests)
        k = max((i for i, t in enumerate(ordered, start=1) if t[0] <= i * alpha / m), default=0)
        significant = set(ordered[:k])
    out: dict[str, str] = {}
    for _p, a, b, diff in significant:
        high, low = (a, b) if diff > 0 else (b, a)
        out[high] = "".join(sorted(out.get(high, "") + low))
    return out


def banner_pairs(banner: str) -> list[tuple[str, str]]:
    codes = AGE_CODES if banner == "AGEGRP" else GENDER_CODES
    letters = dict(zip(codes, "ABCDEFG", strict=False))
    names = list(codes)
    return [
        (letters[x], letters[y])
        for i, x in enumerate(names)
        for y in names[i + 1 :]
        if not set(codes[x]) & set(codes[y])
    ]


def test_one_roll_up_of_scopes_and_banner_columns_equals_two(study, monkeypatch):
    """Without nets, a wave's scopes and banner columns are rolled up together (one aggregate: see
    stats._aggregated). The tables equal those of two roll-ups, one of each: the Total rows exactly, the
    banner columns' estimates to the last bits (their questions' centres are the scopes'), every count,
    letter and flag exactly."""
    import wavetool.stats as stats

    config = load_config(study)
    config = dataclasses.replace(config, banners=dataclasses.replace(config.banners, nets={}))
    joined = []
    both = stats._both
    monkeypatch.setattr(stats, "_both", lambda *a: joined.append(1) or both(*a))
    one = tabulate(config, WAVE, scopes=["quebec", "all"], banners=BANNERS)
    assert joined, "the scopes and banner columns were rolled up apart"
    monkeypatch.setattr(stats, "_same_design", lambda main, columns: False)
    two = tabulate(config, WAVE, scopes=["quebec", "all"], banners=BANNERS)
    for name in ("rows_table", "summaries_table", "suppressed_table"):
        a, b = getattr(one, name), getattr(two, name)
        assert a.schema == b.schema and a.num_rows == b.num_rows > 0
        total_a, total_b = (t.filter(pc.equal(t.column("banner"), "")) for t in (a, b))
        assert total_a.equals(total_b), name
        for column in a.column_names:
            x, y = a.column(column), b.column(column)
            if pa.types.is_floating(x.type):
                xs, ys = (np.asarray(v.to_numpy(zero_copy_only=False), dtype=float) for v in (x, y))
                assert np.allclose(xs, ys, rtol=1e-12, atol=0, equal_nan=True), (name, column)
            else:
                assert x.equals(y), (name, column)


@pytest.mark.parametrize(
    "adjust",
    # the default in the fast loop; the other two adjustments in make test
    ["bonferroni", pytest.param("bh", marks=pytest.mark.slow), pytest.param("none", marks=pytest.mark.slow)],
)
def test_column_letters_follow_the_documented_test(study, exported, adjust):
    config = load_config(study)
    config = dataclasses.replace(config, banners=dataclasses.replace(config.banners, adjust=adjust))
    result = tabulate(config, WAVE, scopes=["quebec", "all"], banners=BANNERS)
    rows = result.rows_table.to_pandas()
    summaries = result.summaries_table.to_pandas()
    alpha = 1 - config.tables.confidence
    checked = letters_seen = 0
    for scope in ("quebec", "all"):
        for banner in BANNERS:
            codes = AGE_CODES if banner == "AGEGRP" else GENDER_CODES
            for question in ("Q1", "Q2", "Q15", "Q19", "Q28"):
                stats = {}
                for letter, code in zip("ABCDEFG", codes, strict=False):
                    valid = column_frame(exported, scope, banner, code)
                    valid = valid[valid[question].isin(VALID)]
                    if len(valid) < config.tables.min_base:  # shown, never tested
                        continue
                    w = valid["WEIGHT"]
                    stats[letter] = (valid, w, w.sum() ** 2 / (w**2).sum())
                for value in [*VALID, "top", "mean"]:
                    cells = {}
                    for letter, (valid, w, n_eff) in stats.items():
                        if value == "mean":
                            x = valid[question]
                            mean = (w * x).sum() / w.sum()
                            n = len(x)
                            sd = math.sqrt((w * (x - mean) ** 2).sum() / w.sum() * n / (n - 1))
                            cells[letter] = {"val": mean, "se": sd / math.sqrt(n_eff)}
                        else:
                            chosen = valid[question] >= 4 if value == "top" else valid[question] == value
                            p = w[chosen].sum() / w.sum()
                            cells[letter] = {"val": 100 * p, "se": 100 * math.sqrt(p * (1 - p) / n_eff)}
                    if "se" in rows.columns:  # the design's SEs (engineer var's); a withheld (F) cell is not tested
                        for letter in list(cells):
                            if value in ("top", "mean"):
                                s = summaries[
                                    (summaries.scope == scope)
                                    & (summaries.banner == banner)
                                    & (summaries.question == question)
                                    & (summaries.column == letter)
                                ].iloc[0]
                                shown, se = (s.topbox, s.topbox_se) if value == "top" else (s["mean"], s.mean_se)
                            else:
                                sel = rows[
                                    (rows.scope == scope)
                                    & (rows.banner == banner)
                                    & (rows.question == question)
                                    & (rows.column == letter)
                                    & (rows.code == str(value))
                                ].iloc[0]
                                shown, se = sel.percent, sel.se
                            if math.isnan(shown):
                                del cells[letter]
                            else:
                                cells[letter]["se"] = se
                    want = expected_letters(cells, banner_pairs(banner), alpha, adjust)
                    for letter in "ABCDE"[: len(codes)]:
                        if value in ("top", "mean"):
                            s = summaries[
                                (summaries.scope == scope)
                                & (summaries.banner == banner)
                                & (summaries.question == question)
                                & (summaries.column == letter)
                            ].iloc[0]
                            got = s["topbox_sig_columns" if value == "top" else "mean_sig_columns"]
                        else:
                            got = rows[
                                (rows.scope == scope)
                                & (rows.banner == banner)
                                & (rows.question == question)
                                & (rows.column == letter)
                                & (rows.code == str(value))
                            ].iloc[0]["sig_columns"]
                        assert got == want.get(letter, ""), (adjust, scope, banner, question, value, letter)
                        checked += 1
                        letters_seen += len(got)
    assert checked > 300 and letters_seen > 5  # the test really decided something


def test_column_under_min_base_is_shown_but_not_tested(tables):
    rows = tables.rows_table.to_pandas()
    other = rows[(rows.scope == "quebec") & (rows.banner == "GENDER") & (rows.banner_code == "3")]
    assert len(other) and other.suppressed.all() and set(other.sig_columns) == {""}
    tested = rows[(rows.scope == "quebec") & (rows.banner == "GENDER")]
    assert not tested.sig_columns.str.contains("C").any()


def test_custom_questions_get_banners_in_their_subscribers_scope_only(tables):
    rows = tables.rows_table.to_pandas()
    custom = rows[rows.kind == "custom"]
    assert set(custom.scope) == {"quebec"} and {"", "AGEGRP", "GENDER"} == set(custom.banner)


# --- config -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ('[banners]\nvariables = ["AGEGRP"]\nadjust = "holm"\n', "is not one of bonferroni, bh, none"),
        ('[banners]\nvariables = ["AGEGRP", "AGEGRP"]\n', "listed twice"),
        ('[banners]\nvariables = ["AGEGRP"]\n[banners.nets.GENDER]\n"x" = [1]\n', "is not one of [banners] variables"),
        ('[banners]\nvariables = ["AGEGRP"]\n[banners.nets.AGEGRP]\n"young" = ["one"]\n', "numeric codes"),
        ('[banners]\nvariables = ["AGEGRP"]\n[banners.nets.AGEGRP]\n"1" = [1, 2]\n', "must not be a code"),
        ('[banners]\nvariables = ["AGEGRP"]\ncolour = 1\n', "unknown key"),
        ('[delivery]\nattach = ["xlsx"]\n', "must list pdf"),
        ('[delivery]\nattach = ["pdf", "docx"]\n', "must list pdf"),
    ],
)
def test_banner_and_attach_config_is_validated(tmp_path, block, message):
    import tomllib

    text = '[study]\nname = "x"\n' + block
    with pytest.raises(ConfigError) as info:
        parse_config(tomllib.loads(text), tmp_path / "wavetool.toml")
    assert message in info.value.message


def test_unknown_banner_and_bad_net_are_errors(study, cli):
    code, _, err = cli("--study", study, "tabulate", "--wave", "4", "--by", "COMMENT", "-q", "Q1")
    assert code == 66 and "not a labelled single-response core question" in err
    config = load_config(study)
    bad = dataclasses.replace(config, banners=dataclasses.replace(config.banners, nets={"AGEGRP": {"x": (1.0, 7.0)}}))
    with pytest.raises(ConfigError, match="code 7 is not a valid code of AGEGRP"):
        tabulate(bad, WAVE, banners=["AGEGRP"])


def test_cli_by_banners_csv_and_xlsx(study, cli, tmp_path):
    out = tmp_path / "t.csv"
    code, _, err = cli(
        "--study",
        study,
        "tabulate",
        "--wave",
        "4",
        "-s",
        "quebec",
        "--by",
        "GENDER",
        "-q",
        "Q1",
        "-f",
        "csv",
        "-o",
        out,
    )
    assert code == 0, err
    frame = pd.read_csv(out, keep_default_na=False)
    assert list(frame.columns[-7:]) == [
        "banner",
        "banner_code",
        "banner_label",
        "column",
        "sig_columns",
        "topbox_sig_columns",
        "mean_sig_columns",
    ]
    assert set(frame.banner) == {"", "GENDER"} and set(frame.column) == {"", "A", "B", "C"}
    code, _, err = cli(
        "--study", study, "tabulate", "--wave", "4", "--banners", "-f", "xlsx", "-o", tmp_path / "x.xlsx"
    )
    assert code == 2 and "exactly one --subscriber" in err
    book = tmp_path / "q.xlsx"
    code, _, err = cli(
        "--study", study, "tabulate", "--wave", "4", "-s", "quebec", "--banners", "-f", "xlsx", "-o", book
    )
    assert code == 0 and book.exists(), err


# --- the data book ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def books(study: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    config = load_config(study)
    result = tabulate(config, WAVE, scopes=list(config.subscribers), banners=list(config.banners.variables))
    folder = tmp_path_factory.mktemp("books")
    return {sub: write_databook(config, result, sub, folder / f"{sub}.xlsx") for sub in config.subscribers}


def test_book_reads_back_with_numbers_letters_and_french_formats(study, books, tables):
    wb = openpyxl.load_workbook(books["quebec"])
    assert wb.sheetnames[0] == "Table des matières" and wb.sheetnames[-1] == "Notes"
    contents = wb["Table des matières"]
    links = [c.hyperlink.location for row in contents.iter_rows() for c in row if c.hyperlink]
    assert "'Q1'!A1" in links and "'C1'!A1" in links
    ws = wb["Q1"]
    assert ws.freeze_panes == "B6"
    header = [c.value for c in ws[4]]
    assert header[1:3] == ["Total", "Référence"] and "18 à 34 ans" in header and "18 à 54 ans" in header
    assert "Homme" in header and "(A)" in [c.value for c in ws[5]]
    labels = {ws.cell(r, 1).value: r for r in range(6, ws.max_row + 1)}
    assert "Très insatisfait" in labels and "Base non pondérée" in labels and "Moyenne" in labels
    rows = tables.rows_table.to_pandas()
    q1 = rows[(rows.scope == "quebec") & (rows.question == "Q1")]
    homme = header.index("Homme") + 1
    line = labels["Satisfait"]
    cell = ws.cell(line, homme)
    want = q1[(q1.banner == "GENDER") & (q1.banner_code == "1") & (q1.code == "4")].iloc[0]
    assert cell.data_type == "n" and cell.value == pytest.approx(want.percent)
    assert cell.number_format.startswith("[$-0C0C]")
    assert (ws.cell(line + 1, homme).value or "") == want.sig_columns
    total = ws.cell(labels["Base non pondérée"], 2)
    base_n = (
        tables.summaries_table.to_pandas()
        .query("scope == 'quebec' and question == 'Q1' and banner == ''")
        .iloc[0]
        .base_n
    )
    assert total.data_type == "n" and total.value == base_n
    # the "Autre genre" column's base is under min_base: shown, its percents blank with a footnote
    other = header.index("Autre genre") + 1
    assert isinstance(ws.cell(labels["Base non pondérée"], other).value, (int, float))
    assert ws.cell(line, other).value is None
    notes = " ".join(str(c.value) for row in ws.iter_rows() for c in row if c.value)
    assert "inférieure à 30" in notes and "Bonferroni" in notes
    for row in ws.iter_rows(min_row=6):
        for c in row[1:]:
            if isinstance(c.value, str):
                assert re.fullmatch(r"[A-Z]+", c.value), c.value  # only letters are text; numbers are numbers
    assert "Notes" in wb.sheetnames and wb["Notes"].cell(3, 1).value


def test_french_book_sets_french_typography_and_names_its_sets_in_french(books):
    """Titles and notes take a narrow no-break space before ':' and ';' as the French report does; a
    multiple-response set is titled and its items labelled from their French texts, never the file's English."""
    wb = openpyxl.load_workbook(books["quebec"], read_only=True)
    contents = wb["Table des matières"]
    assert contents.cell(1, 1).value.startswith("Cahier de données\u202f: ")
    assert wb["Q1"].cell(1, 1).value.startswith("Q1\u202f: ")
    sheet = next(name for name in wb.sheetnames if "CHANNELS" in name)
    ws = wb[sheet]
    title = ws.cell(1, 1).value
    assert title == "$CHANNELS\u202f: Mode utilisé au cours des 12 derniers mois", title
    items = [row[0] for row in ws.iter_rows(min_row=6, max_col=1, values_only=True) if row[0]]
    assert any(item.endswith("En personne") for item in items), items
    assert not any("Channel" in item for item in items), items
    listed = [row[1] for row in contents.iter_rows(min_row=5, max_col=2, values_only=True) if row[0] == "$CHANNELS"]
    assert listed == ["Mode utilisé au cours des 12 derniers mois"]
    english = openpyxl.load_workbook(books["ontario"], read_only=True)
    assert english["Q1"].cell(1, 1).value.startswith("Q1: ")


def test_english_book_has_plain_formats_and_only_its_own_questions(books):
    wb = openpyxl.load_workbook(books["ontario"])
    ws = wb["Q1"]
    assert [c.value for c in ws[4]][1:3] == ["Total", "Benchmark"]
    numbers = [c for row in ws.iter_rows(min_row=6) for c in row if c.data_type == "n" and c.value is not None]
    assert numbers and not any(c.number_format.startswith("[$") for c in numbers)
    quebec = openpyxl.load_workbook(books["quebec"])
    quebec_custom = {n for n in quebec.sheetnames if n.startswith("C")}
    ontario_text = " ".join(str(wb[n].cell(1, 1).value) for n in wb.sheetnames)
    for name in quebec_custom:
        assert str(quebec[name].cell(1, 1).value) not in ontario_text


def test_books_are_byte_identical_across_runs(study, books, tmp_path):
    config = load_config(study)
    # the same request as the books fixture (a benchmark's last bits depend on the scopes summed beside it)
    result = tabulate(config, WAVE, scopes=list(config.subscribers), banners=list(config.banners.variables))
    again = write_databook(config, result, "quebec", tmp_path / "again.xlsx")
    assert hashlib.sha256(again.read_bytes()).digest() == hashlib.sha256(books["quebec"].read_bytes()).digest()


# --- the book beside the report, over SMTP ----------------------------------------------------------


@pytest.mark.slow  # renders and sends (make test-fast skips it)
def test_book_is_attached_once_with_its_sha256_in_the_delivery_log(study, tmp_path, pdf_bytes, smtp_server, cli):  # noqa: F811
    import shutil

    folder = tmp_path / "send"
    shutil.copytree(study, folder)
    (folder / ".wavetool.lock").unlink(missing_ok=True)
    write_reports(folder, 1, pdf_bytes)
    recorder, port = smtp_server()
    set_delivery(folder, smtp_block(port, extra='attach = ["pdf", "xlsx"]'))
    code, _, err = cli("--study", folder, "send", "--wave", "1")
    assert code == 66 and "data book for subscriber" in err and "nothing was sent" in err
    assert not recorder.messages
    config = load_config(folder)
    result = tabulate(config, 1, scopes=list(config.subscribers), banners=list(config.banners.variables))
    for sub in config.subscribers:
        write_databook(config, result, sub, book_path(config, 1, sub))
    code, _, err = cli("--study", folder, "send", "--wave", "1")
    assert code == 0, err
    assert len(recorder.messages) == len(config.subscribers)
    log = sqlite3.connect(folder / "wavetool-delivery.sqlite")
    logged = dict(log.execute("SELECT subscriber, book_sha256 FROM deliveries WHERE status = 'sent'").fetchall())
    for entry in recorder.messages:
        message = entry["message"]
        sub = message["X-Wavetool-Subscriber"]
        parts = list(message.iter_attachments())
        assert [p.get_content_type() for p in parts] == [
            "application/pdf",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ]
        book = parts[1].get_content()
        digest = hashlib.sha256(book).hexdigest()
        assert digest == hashlib.sha256(book_path(config, 1, sub).read_bytes()).hexdigest() == logged[sub]
        assert str(message["X-Wavetool-Book-SHA256"]).strip() == digest
        assert parts[1].get_filename().endswith(".xlsx")
    code, out, _ = cli("--study", folder, "send", "--wave", "1")
    assert code == 0 and len(recorder.messages) == len(config.subscribers) and "already sent" in out
    # a changed book is not sent again silently
    other = dataclasses.replace(config, banners=dataclasses.replace(config.banners, variables=("GENDER",)))
    write_databook(
        other, tabulate(other, 1, scopes=["ontario"], banners=["GENDER"]), "ontario", book_path(config, 1, "ontario")
    )
    code, out, _ = cli("--study", folder, "send", "--wave", "1")
    assert len(recorder.messages) == len(config.subscribers) and "data book changed" in out


@pytest.mark.parametrize("path", ["numpy", "sql"])
def test_banner_scan_cells_equal_a_pandas_groupby(path, monkeypatch):
    """The banner scan (stats.banners.single_cells: numpy sums, with the SQL scan for answers it cannot lay
    out densely and for designs with many keys) against pandas on the same rows: every core cell (key,
    question, answer) and every banner cell (key of one banner's code) with its n, Σw and Σw². Answers:
    labelled codes with system-missing, a negative and a zero code, fractions, a numeric with 80
    distinct values, a question nobody answered."""
    import duckdb

    from wavetool.stats import banners as B

    if path == "sql":
        monkeypatch.setattr(B, "MAX_NUMBERS", 1)
    rng = np.random.default_rng(3)
    rows = 3000
    frame = pd.DataFrame(
        {
            "_jurisdiction": rng.choice(["AA", "BB", "CC"], rows),
            "_weight": rng.uniform(0.2, 3.0, rows),
            "AGE": rng.choice([1.0, 2.0, 3.0, 9.0], rows),  # 9: refused, no banner column
            "SEX": rng.choice([1.0, 2.0], rows),
            "Q1": rng.choice([1.0, 2.0, 3.0, 4.0, 5.0, np.nan], rows),
            "Q2": rng.choice([-1.0, 0.0, 7.0, np.nan], rows),
            "Q3": rng.choice([0.5, 1.25, 2.0, np.nan], rows),
            "Q4": rng.integers(0, 80, rows).astype(float) * 1.5,
            "Q5": np.full(rows, np.nan),
        }
    )
    con = duckdb.connect()
    con.register("frame", frame)
    con.execute("CREATE TABLE wave_1 AS SELECT * FROM frame")
    plan = B.BannerPlan(
        tuple(
            B.Banner(
                name,
                None,
                codes,
                tuple(B.BannerColumn(str(int(c)), None, (c,), False, "ABC"[i]) for i, c in enumerate(codes)),
            )
            for name, codes in (("AGE", (1.0, 2.0, 3.0)), ("SEX", (1.0, 2.0)))
        ),
        "bonferroni",
        4,
    )
    keys = B.number_respondents(con, plan, "wave_1", "_jurisdiction", plan.bk_sql({"AGE": "AGE", "SEX": "SEX"}), True)
    questions = [(q, q) for q in ("Q1", "Q2", "Q3", "Q4", "Q5")]
    core, refined = B.single_cells(con, plan, B.numbered("wave_1"), 1, questions, True, keys)

    long = frame.melt(id_vars=["_jurisdiction", "_weight", "AGE", "SEX"], var_name="question", value_name="value")
    long["w2"] = long["_weight"] ** 2

    def expected(key: pd.Series, part: pd.DataFrame) -> pd.DataFrame:
        grouped = part.assign(key=key).groupby(["question", "key", "value"], dropna=False)
        return grouped.agg(n=("_weight", "size"), sw=("_weight", "sum"), sw2=("w2", "sum")).reset_index()

    def compare(got, want: pd.DataFrame) -> None:
        got = got.to_pandas().sort_values(["question", "key", "value"], na_position="first").reset_index(drop=True)
        want = want.sort_values(["question", "key", "value"], na_position="first").reset_index(drop=True)
        assert got[["question", "key"]].equals(want[["question", "key"]])
        assert np.array_equal(got["value"].to_numpy(), want["value"].to_numpy(), equal_nan=True)
        assert (got["n"].to_numpy() == want["n"].to_numpy()).all()
        for column in ("sw", "sw2"):
            assert np.allclose(got[column], want[column], rtol=1e-13, atol=0)

    compare(core, expected(long["_jurisdiction"], long))
    banner_parts = []
    for b, name in enumerate(("AGE", "SEX")):
        codes = plan.banners[b].codes
        part = long[long[name].isin(codes)]
        index = part[name].map({c: i + 1 for i, c in enumerate(codes)})
        banner_parts.append(expected(part["_jurisdiction"] + f"{B.SEP}b{b}{B.SEP}" + index.astype(str), part))
    compare(refined, pd.concat(banner_parts))
    assert set(core.column("question").to_pylist()) == {"Q1", "Q2", "Q3", "Q4", "Q5"}  # Q5: system missing only
