"""wavetool.toml: a valid config loads into exactly what it says; every invalid one is a ConfigError naming
the file and the dotted key; `wavetool init` writes a commented example that loads and is never overwritten."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from wavetool.config import load_config
from wavetool.errors import ConfigError, ExitCode

VALID = """
[study]
name = "Citizens' Service Tracking Study"
name_fr = "Étude de suivi des services aux citoyens"

[columns]
id = "RID"
jurisdiction = "PROVINCE"
weight = "WT"

[[waves]]
number = 1
label = "Wave 1 (June 2020)"
label_fr = "Vague 1 (juin 2020)"
fieldwork_start = 2020-06-01
fieldwork_end = "2020-06-21"
inbox = "inbox/wave-1"

[[waves]]
number = 4
label = "Wave 4"
codebook = "inbox/wave-4/codebook.toml"
[waves.columns]
weight = "WT_FINAL"

[jurisdictions]
ON = { en = "Ontario", fr = "Ontario" }
QC = { en = "Quebec", fr = "Québec" }
NS = { en = "Nova Scotia", fr = "Nouvelle-Écosse" }

[[subscribers]]
id = "quebec"
name = "Government of Quebec"
name_fr = "Gouvernement du Québec"
jurisdictions = ["QC"]
language = "fr"
contacts = ["analyste@quebec.example"]
cc = ["chef@quebec.example"]

[[subscribers]]
id = "maritimes"
name = "Maritime provinces"
jurisdictions = ["NS"]
contacts = ["a@maritimes.example", "b@maritimes.example"]
custom_prefix = "MA_"
[[subscribers.custom]]
wave = 1
file = "inbox/wave-1/custom-maritimes.csv"
codebook = "inbox/wave-1/custom-maritimes-codebook.csv"

[pipeline]
lock_timeout = 5
"""


def write_config(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "wavetool.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_config_loads_into_what_it_says(tmp_path):
    write_config(tmp_path, VALID)
    config = load_config(tmp_path)
    assert config.name == "Citizens' Service Tracking Study" and config.name_fr.startswith("Étude")
    assert (config.columns.id, config.columns.jurisdiction, config.columns.weight) == ("RID", "PROVINCE", "WT")
    assert sorted(config.waves) == [1, 4]
    w1 = config.waves[1]
    assert (w1.label, w1.label_fr, w1.fieldwork_start, w1.fieldwork_end, w1.inbox) == (
        "Wave 1 (June 2020)",
        "Vague 1 (juin 2020)",
        dt.date(2020, 6, 1),
        dt.date(2020, 6, 21),
        "inbox/wave-1",
    )
    assert config.roles_for_wave(4).weight == "WT_FINAL" and config.roles_for_wave(1).weight == "WT"
    assert config.roles_for_wave(4).id == "RID"
    assert config.jurisdictions["QC"].name("fr") == "Québec"
    quebec = config.subscriber("quebec")
    assert (quebec.language, quebec.jurisdictions, quebec.contacts, quebec.cc) == (
        "fr",
        ("QC",),
        ("analyste@quebec.example",),
        ("chef@quebec.example",),
    )
    maritimes = config.subscriber("maritimes")
    assert maritimes.language == "en" and maritimes.name_fr == "Maritime provinces"
    assert maritimes.custom_prefix == "MA_" and maritimes.custom[0].wave == 1
    assert config.pipeline.lock_timeout == 5.0
    assert config.resolve("inbox") == tmp_path.resolve() / "inbox"


def test_the_sample_study_config_loads():
    config = load_config(Path(__file__).resolve().parents[1] / "sample_data")
    assert sorted(config.waves) == [1, 2, 3, 4] and len(config.jurisdictions) == 13
    assert {s.language for s in config.subscribers.values()} == {"en", "fr"}


# (name, edit to VALID, dotted key expected in the message, words expected in the message)
INVALID = [
    ("unknown top-level key", ("[pipeline]", "[pipelines]"), "pipelines", "unknown key"),
    ("unknown key in a table", ('name_fr = "Étude', 'nmae_fr = "Étude'), "study.nmae_fr", "unknown key"),
    (
        "unknown key in a subscriber",
        ('custom_prefix = "MA_"', 'custom_prefx = "MA_"'),
        "subscribers[1].custom_prefx",
        "unknown key",
    ),
    (
        "unknown key in a custom file",
        ('file = "inbox/wave-1/custom', 'fil = "inbox/wave-1/custom'),
        "subscribers[1].custom[0].fil",
        "unknown key",
    ),
    ("duplicate subscriber id", ('id = "maritimes"', 'id = "quebec"'), "subscribers[1].id", "duplicate subscriber id"),
    ("path traversal id", ('id = "quebec"', 'id = "../../etc"'), "subscribers[0].id", "not a safe id"),
    ("uppercase id", ('id = "quebec"', 'id = "Quebec"'), "subscribers[0].id", "not a safe id"),
    (
        "invalid e-mail",
        ('"analyste@quebec.example"', '"analyste at quebec"'),
        "subscribers[0].contacts",
        "not a valid e-mail",
    ),
    ("invalid cc e-mail", ('"chef@quebec.example"', '"chef@"'), "subscribers[0].cc", "not a valid e-mail"),
    (
        "unknown jurisdiction in a subscriber",
        ('jurisdictions = ["NS"]', 'jurisdictions = ["NS", "PEI"]'),
        "subscribers[1].jurisdictions",
        "unknown jurisdiction code 'PEI'",
    ),
    ("bad language", ('language = "fr"', 'language = "de"'), "subscribers[0].language", "not one of en, fr"),
    ("wave number 0", ("number = 4", "number = 0"), "waves[1].number", "not a wave number 1-99"),
    ("wave number as text", ("number = 4", 'number = "4"'), "waves[1].number", "must be an integer"),
    ("wave listed twice", ("number = 4", "number = 1"), "waves[1].number", "listed twice"),
    (
        "bad date",
        ('fieldwork_end = "2020-06-21"', 'fieldwork_end = "2020-13-01"'),
        "waves[0].fieldwork_end",
        "not a date",
    ),
    (
        "end before start",
        ('fieldwork_end = "2020-06-21"', 'fieldwork_end = "2020-05-21"'),
        "waves[0].fieldwork_end",
        "before fieldwork_start",
    ),
    ("missing study name", ('name = "Citizens\' Service Tracking Study"\n', ""), "study.name", "is required"),
    ("negative lock timeout", ("lock_timeout = 5", "lock_timeout = -1"), "pipeline.lock_timeout", "zero or more"),
]


@pytest.mark.parametrize(("name", "edit", "key", "words"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_config_names_file_and_key(tmp_path, name, edit, key, words):
    old, new = edit
    assert old in VALID, f"test edit {old!r} does not apply"
    path = write_config(tmp_path, VALID.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key}:"), message
    assert words in message
    assert info.value.exit_code == ExitCode.CONFIG


def test_invalid_config_through_the_cli_is_one_line_and_exit_78(tmp_path, cli):
    write_config(tmp_path, VALID.replace('id = "quebec"', 'id = "../../etc"'))
    code, out, err = cli("--study", tmp_path, "status")
    assert code == 78
    assert err.startswith(f"Error: {tmp_path / 'wavetool.toml'}: subscribers[0].id: '../../etc' is not a safe id")
    assert "Traceback" not in err and out == ""


def test_not_toml_and_missing_config_are_config_errors(tmp_path, cli):
    code, _, err = cli("--study", tmp_path, "status")
    assert code == 78 and "no study configuration here" in err and "wavetool init" in err
    write_config(tmp_path, "[study\nname = 1\n")
    code, _, err = cli("--study", tmp_path, "status")
    assert code == 78 and "not valid TOML" in err and str(tmp_path / "wavetool.toml") in err


def test_init_writes_a_commented_example_that_loads(tmp_path, cli):
    study = tmp_path / "new-study"
    code, out, err = cli("init", study)
    assert code == 0, err
    text = (study / "wavetool.toml").read_text(encoding="utf-8")
    assert sum(1 for line in text.splitlines() if line.lstrip().startswith("#")) >= 10
    assert (study / "wavetool.duckdb").exists()
    config = load_config(study)
    assert config.name and config.waves and config.subscribers
    code, out, err = cli("--study", study, "status", "--json")
    assert code == 0, err


def test_init_never_overwrites_an_existing_config(tmp_path, cli):
    path = write_config(tmp_path, VALID)
    code, out, _ = cli("init", tmp_path)
    assert code == 0
    assert "kept existing" in out
    assert path.read_text(encoding="utf-8") == VALID
    code, out, _ = cli("init", tmp_path, "--json")
    assert code == 0 and '"config_created": false' in out and '"database_created": false' in out


def test_report_summary_keys_and_polarity(tmp_path):
    """[report] headline / appendix / benchmark_label / themes, subscribers' in-sentence names and
    [tables.scales.Q] polarity (alone it keeps the automatic boxes; with top/bottom it sets them)."""
    extra = (
        '\n[report]\nheadline = ["Q1", "Q28"]\nappendix = true\n'
        'benchmark_label = { en = "Benchmark: everyone outside {places}." }\n'
        '[[report.themes]]\nname = "Service"\nname_fr = "Service"\nquestions = ["Q1", "Q2"]\n'
        '\n[tables.scales.Q23]\npolarity = "negative"\n[tables.scales.Q5]\ntop = [5]\nbottom = [1]\npolarity = "neutral"\n'
    )
    assert "[report]" not in VALID and "[tables" not in VALID
    text = VALID.replace('custom_prefix = "MA_"', 'custom_prefix = "MA_"\nsentence_name = "the Partnership"', 1)
    config = load_config(write_config(tmp_path, text + extra).parent)
    assert config.report.headline == ("Q1", "Q28") and config.report.appendix is True
    assert config.report.benchmark_label == {"en": "Benchmark: everyone outside {places}."}
    assert [(t.name, t.questions) for t in config.report.themes] == [("Service", ("Q1", "Q2"))]
    assert config.tables.polarity == {"Q23": "negative", "Q5": "neutral"}
    assert "Q23" not in config.tables.scales and config.tables.scales["Q5"].top == (5.0,)
    partnership = next(s for s in config.subscribers.values() if s.custom_prefix == "MA_")
    assert partnership.in_sentence("en") == "the Partnership" and partnership.in_sentence("fr") is None
    for bad, key in (
        ('[tables.scales.Q23]\npolarity = "bad"\n', "tables.scales.Q23.polarity"),
        ('[report]\nbenchmark_label = { de = "x" }\n', "report.benchmark_label.de"),
        ('[report]\n[[report.themes]]\nname = "x"\n', "report.themes[0].questions"),
    ):
        with pytest.raises(ConfigError) as info:
            load_config(write_config(tmp_path / key, text + "\n" + bad).parent)
        assert key in info.value.message, info.value.message
