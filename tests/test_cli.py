"""The `mug-nb` console script: output formats and one-line errors."""
import json
import subprocess
import sys
import zipfile

import pytest

from mug_nb.cli import main


def run(*args):
    return subprocess.run([sys.executable, "-c", "import sys; from mug_nb.cli import main; sys.exit(main())", *args],
                          capture_output=True, text=True)


def test_info_json(samples):
    chart = sorted((samples / "charts").glob("*.osu"))[0]
    r = run("info", str(chart), "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["key_count"] == 4 and info["notes"] > 0
    assert {"star_rating", "skillsets", "prompt"} <= set(info)


def test_info_text(samples, capsys):
    chart = sorted((samples / "charts").glob("*.osu"))[0]
    assert main(["info", str(chart), "--no-features"]) == 0
    out = capsys.readouterr().out
    assert "key_count" in out and "holds" in out


@pytest.mark.parametrize("content", [None, "osu file format v14\n[General]\nMode: 0\n[HitObjects]\n256,192,0,1,0\n",
                                     "not a chart at all"])
def test_bad_chart_is_one_line_error(tmp_path, content):
    path = tmp_path / "bad.osu"
    if content is not None:
        path.write_text(content)
    r = run("info", str(path))
    assert r.returncode == 2
    assert r.stderr.startswith("mug-nb: error:") and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr


# --- generate: the README's main job, end to end through the console script -------------------------------

def _song(samples):
    return sorted((samples / "songs").iterdir())[0]


def test_generate_json_two_variants_read_back_and_repeat(samples, tmp_path):
    import rosu_pp_py as rosu
    from mug_nb.osu import read_osz
    args = ["generate", str(_song(samples)), "--count", "2", "--steps", "20", "--seed", "1", "--json"]
    first = run(*args, "--out", str(tmp_path / "a"))
    assert first.returncode == 0, first.stderr
    paths = json.loads(first.stdout)
    assert len(paths) == 2 and all(p.endswith(".osz") for p in paths)
    charts = []
    for p in paths:
        (bm,) = read_osz(p).charts.values()
        assert bm.key_count == 4 and bm.notes
        with zipfile.ZipFile(p) as z:  # rosu-pp reads the very bytes we wrote
            (name,) = [n for n in z.namelist() if n.endswith(".osu")]
            assert rosu.Difficulty().calculate(rosu.Beatmap(bytes=z.read(name))).stars > 0
        charts.append([(n.time, n.column, n.end) for n in bm.notes])
    again = run(*args, "--out", str(tmp_path / "b"))
    assert again.returncode == 0, again.stderr
    assert [[(n.time, n.column, n.end) for n in next(iter(read_osz(p).charts.values())).notes]
            for p in json.loads(again.stdout)] == charts


def test_generate_never_overwrites(samples, tmp_path):
    args = ["generate", str(_song(samples)), "--count", "1", "--steps", "2", "--seed", "3", "--json", "--out", str(tmp_path)]
    a, b = run(*args), run(*args)
    assert a.returncode == b.returncode == 0, a.stderr + b.stderr
    pa, pb = json.loads(a.stdout)[0], json.loads(b.stdout)[0]
    assert pa != pb and (tmp_path / pa).exists() and (tmp_path / pb).exists()


@pytest.mark.parametrize("case", ["missing", "silent", "prompt"])
def test_generate_bad_input_one_line(case, samples, tmp_path):
    import numpy as np
    import soundfile as sf
    audio = str(_song(samples))
    extra = []
    if case == "missing":
        audio = str(tmp_path / "nope.ogg")
    elif case == "silent":
        audio = str(tmp_path / "silent.wav")
        sf.write(audio, np.zeros(22050 * 5, "float32"), 22050)
    else:
        extra = ["--sr", "99"]
    r = run("generate", audio, "--out", str(tmp_path / "out"), "--count", "1", "--steps", "2", *extra)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.startswith("mug-nb: error:") and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_prepare_reports_bad_files_and_resumes(samples, tmp_path):
    import shutil
    src = tmp_path / "Songs"
    shutil.copytree(_song(samples), src / "good")
    (src / "broken").mkdir()
    (src / "broken" / "x [Hard].osu").write_text("osu file format v14\n[HitObjects]\nnot,a,note\n")
    args = ["prepare", str(src), "--out", str(tmp_path / "ds"), "--workers", "1", "--json"]
    first = run(*args)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["charts"] == len(list(_song(samples).glob("*.osu")))
    assert [b for b in report["bad"] if "broken" in b["path"]] and all(b["reason"] for b in report["bad"])
    again = json.loads(run(*args).stdout)
    assert again["processed"] == 0 and again["charts"] == report["charts"]
