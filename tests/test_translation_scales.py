"""`[translations.<language>.scales]`: a shared answer scale translated once for every question using it;
per-question keys still win; `check-translations` counts what is missing after that."""

from __future__ import annotations

import json

import pytest

from wavefiles import wave_frame, write_sav, write_study
from wavetool.config import load_config
from wavetool.errors import ConfigError
from wavetool.texts import translated

SCALES = """
[translations.fr]
"Q1" = "Satisfaction générale"
"Q2" = "Facilité d'accès"
"Q2.5" = "Tout à fait satisfait"

[translations.fr.scales]
"Très insatisfait" = "Très insatisfait (fr)"
"Insatisfait" = "Insatisfait (fr)"
"""


def test_a_scale_entry_translates_every_question_and_a_question_key_wins(tmp_path):
    study = write_study(tmp_path / "s", extra=SCALES)
    config = load_config(study)
    assert translated(config, "fr", "Q1.1", "Très insatisfait", "en") == "Très insatisfait (fr)"
    assert translated(config, "fr", "Q2.1", "Très insatisfait", "en") == "Très insatisfait (fr)"
    assert translated(config, "fr", "Q2.5", "Très satisfait", "en") == "Tout à fait satisfait"  # own key
    assert translated(config, "fr", "Q1.5", "Très satisfait", "en") is None  # in no scale
    # a question's own text is not an answer: a scale entry never translates it
    assert translated(config, "fr", "Insatisfait", "Insatisfait", "en") is None
    assert "scales" not in config.translations["fr"]


def test_check_translations_counts_what_the_scales_leave(tmp_path, cli):
    study = write_study(tmp_path / "s")
    code, _, err = cli("--study", study, "import", "--wave", "1", write_sav(tmp_path / "w.sav", wave_frame(40)))
    assert code == 0, err
    code, out, _ = cli("--study", study, "codebook", "check-translations", "--json")
    before = {g["key"] for g in json.loads(out) if g["language"] == "fr"}
    assert {"Q1.1", "Q2.1", "Q1.2", "Q2.2"} <= before

    (study / "wavetool.toml").write_text((study / "wavetool.toml").read_text() + SCALES, encoding="utf-8")
    code, out, _ = cli("--study", study, "codebook", "check-translations", "--json")
    after = {g["key"] for g in json.loads(out) if g["language"] == "fr"}
    # two scale entries and one per-question key removed five gaps (and the two question labels)
    assert before - after == {"Q1", "Q2", "Q1.1", "Q2.1", "Q1.2", "Q2.2", "Q2.5"}
    code, out, _ = cli("--study", study, "codebook", "check-translations")
    assert f"{len(after)} text(s) lack a translation" in out
    assert "distinct answer text(s)" in out and "[translations.<language>.scales]" in out


def test_a_scale_entry_must_be_text(tmp_path):
    study = write_study(tmp_path / "s", extra='[translations.fr.scales]\n"Oui" = 1\n')
    with pytest.raises(ConfigError, match=r"translations\.fr\.scales\.Oui: must be a string"):
        load_config(study)
