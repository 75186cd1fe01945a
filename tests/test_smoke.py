from wavetool.codebook import harmonised_codebook, harmonised_select
from wavetool.config import load_config
from wavetool.store import read_store


def test_sample_study_imports_all_waves(imported_study, cli):
    code, out, _ = cli("--study", imported_study, "status", "--json")
    assert code == 0
    assert '"wave": 4' in out


def test_harmonised_select_names_wave4_rename_as_its_question(imported_study):
    config = load_config(imported_study)
    with read_store(imported_study) as con:
        sql = harmonised_select(con, config, 4)
        columns = con.sql(sql).columns
        book = harmonised_codebook(con, config, 4)
    assert "Q5" in columns and "Q5A" not in columns
    assert "BC_1" not in columns and "RESPID" not in columns
    assert book["Q5"].label
