"""`settings.ini` is a mirror of `pyproject.toml` (nbdev 3 reads only the latter); keep them in agreement."""
import configparser
import tomllib

from conftest import ROOT


def _load():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())
    ini = configparser.ConfigParser()
    ini.read(ROOT / "settings.ini")
    return py, ini["DEFAULT"]


def test_nbdev_keys_agree():
    py, ini = _load()
    nb = py["tool"]["nbdev"]
    for key in ("lib_path", "nbs_path", "doc_path", "readme_nb", "tst_flags", "cell_timeout"):
        assert str(nb[key]) == ini[key], key
    assert str(nb["recursive"]) == ini["recursive"].lower() or nb["recursive"] == (ini["recursive"] == "True")


def test_project_keys_agree():
    py, ini = _load()
    proj = py["project"]
    assert proj["name"] == ini["lib_name"] == ini["repo"]
    assert proj["description"] == ini["description"]
    assert proj["requires-python"] == ">=" + ini["min_python"]
    assert " ".join(proj["keywords"]) == ini["keywords"]
    assert proj["dependencies"] == ini["requirements"].split()
    assert proj["optional-dependencies"]["dev"] == ini["dev_requirements"].split()
    scripts = [f"{k}={v}" for k, v in proj["scripts"].items()]
    assert scripts == ini["console_scripts"].split()


def test_version_is_single_sourced():
    import mug_nb
    assert mug_nb.__version__.count(".") == 2
