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


@pytest.mark.slow
def test_generate_json_two_variants_read_back_and_repeat(samples, tmp_path):
    import rosu_pp_py as rosu
    from mug_nb.osu import read_osz
    args = ["generate", str(_song(samples)), "--count", "2", "--steps", "20", "--seed", "1", "--json"]
    first = run(*args, "--out", str(tmp_path / "a"))
    assert first.returncode == 0, first.stderr
    written = json.loads(first.stdout)
    paths = [w["path"] for w in written]
    assert len(paths) == 2 and all(p.endswith(".osz") for p in paths)
    assert all(w["control"] == [] for w in written)                     # nothing asked, nothing steered
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
            for p in [w["path"] for w in json.loads(again.stdout)]] == charts


@pytest.mark.slow
def test_generate_never_overwrites(samples, tmp_path):
    args = ["generate", str(_song(samples)), "--count", "1", "--steps", "2", "--seed", "3", "--json", "--out", str(tmp_path)]
    a, b = run(*args), run(*args)
    assert a.returncode == b.returncode == 0, a.stderr + b.stderr
    pa, pb = json.loads(a.stdout)[0]["path"], json.loads(b.stdout)[0]["path"]
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


@pytest.mark.slow
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
    assert again["up_to_date"] and "nothing new" in again["note"]


# --- info on sets: an .osz, a set folder, a Songs folder ---------------------------------------------------

def _zip_set(folder, target):
    with zipfile.ZipFile(target, "w") as z:
        for f in sorted(folder.iterdir()):
            z.write(f, f.name)
    return target


def test_info_osz_lists_each_chart(samples, tmp_path):
    from mug_nb.osu import read_osu
    song = _song(samples)
    osz = _zip_set(song, tmp_path / "set.osz")
    with zipfile.ZipFile(osz, "a") as z:                  # an osu!standard chart in the set is listed as skipped
        z.writestr("std.osu", "osu file format v14\n\n[General]\nAudioFilename: audio.ogg\nMode: 0\n")
    r = run("info", str(osz), "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    (s,) = info["sets"]
    assert [b["path"] for b in info["skipped"]] == [f"{osz}:std.osu"] and "mania" in info["skipped"][0]["reason"]
    expected = {read_osu(p).metadata["Version"]: len(read_osu(p).notes) for p in song.glob("*.osu")}
    assert {c["version"]: c["notes"] for c in s["charts"]} == expected and len(expected) == 4
    assert all(c["key_count"] == 4 and c["star_rating"] > 0 and c["path"].startswith(f"{osz}:") for c in s["charts"])
    text = run("info", str(osz))
    assert text.returncode == 0, text.stderr
    assert "4 charts in 1 set" in text.stdout and all(f"  {v} " in text.stdout for v in expected)


def test_info_folder_summarises_set_and_songs_folder(samples, tmp_path):
    import shutil
    song = _song(samples)
    r = run("info", str(song), "--json", "--no-features")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["n_charts"] == len(list(song.glob("*.osu")))
    songs = tmp_path / "Songs"                  # two folders, one .osz, a broken chart, a broken archive
    for d in sorted((samples / "songs").iterdir())[:2]:
        shutil.copytree(d, songs / d.name)
    _zip_set(sorted((samples / "songs").iterdir())[2], songs / "third.osz")
    (songs / "x").mkdir()
    (songs / "x" / "x [Hard].osu").write_text("osu file format v14\n[HitObjects]\nnot,a,note\n")
    (songs / "junk.osz").write_bytes(b"not a zip")
    r = run("info", str(songs), "--json", "--no-features")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["n_sets"] == 3 and info["n_charts"] == 12
    assert sorted(b["path"] for b in info["skipped"]) == [str(songs / "junk.osz"), str(songs / "x" / "x [Hard].osu")]
    assert all(b["reason"] for b in info["skipped"])
    text = run("info", str(songs), "--no-features").stdout
    assert "12 charts in 3 sets, 2 skipped" in text and "junk.osz" in text


@pytest.mark.parametrize("case", ["bad_osz", "empty_dir", "missing_osz"])
def test_info_bad_set_is_one_line_error(case, tmp_path):
    path = tmp_path / ("empty" if case == "empty_dir" else "a.osz")
    if case == "bad_osz": path.write_bytes(b"PK\x03\x04 truncated")
    if case == "empty_dir": path.mkdir()
    r = run("info", str(path))
    assert r.returncode == 2
    assert r.stderr.startswith("mug-nb: error:") and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert str(path) in r.stderr


# --- inpaint: a range the song does not have ---------------------------------------------------------------

@pytest.mark.slow
def test_inpaint_range_after_the_song_is_one_line_error(samples, tmp_path):
    song = _song(samples)
    chart = sorted(song.glob("*.osu"))[0]
    out = tmp_path / "out.osu"
    r = run("inpaint", str(chart), str(song / "audio.ogg"), "--start", "600000", "--end", "610000", "--out", str(out))
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.startswith("mug-nb: error:") and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "outside the song" in r.stderr and not out.exists()


@pytest.mark.slow
def test_inpaint_end_past_the_song_runs_to_its_end(samples, tmp_path):
    import soundfile as sf
    from mug_nb.osu import read_osu
    song = _song(samples)
    chart = sorted(song.glob("*[[]Hard].osu"))[0]
    song_ms = sf.info(str(song / "audio.ogg")).duration * 1000
    start = song_ms - 10000
    out = tmp_path / "out.osu"
    r = run("inpaint", str(chart), str(song / "audio.ogg"), "--start", str(start), "--end", str(song_ms + 60000),
            "--out", str(out), "--steps", "2", "--seed", "1")
    assert r.returncode == 0, r.stderr
    old, new = read_osu(chart).notes, read_osu(out).notes
    assert [n for n in new if n.time < start] == [n for n in old if n.time < start]
    assert all(n.time < song_ms for n in new)


@pytest.mark.slow
def test_generate_lands_a_single_feature_and_says_so(samples, tmp_path):
    from mug_nb.features import star_rating
    from mug_nb.osu import read_osz
    r = run("generate", str(_song(samples)), "--out", str(tmp_path), "--count", "2", "--seed", "5", "--sr", "4.5", "--json")
    assert r.returncode == 0, r.stderr
    for w in json.loads(r.stdout):
        (c,) = w["control"]
        bm = next(iter(read_osz(w["path"]).charts.values()))
        assert c["feature"] == "sr" and c["asked"] == "4.5" and c["hit"] and abs(star_rating(bm) - 4.5) <= 0.2
    text = run("generate", str(_song(samples)), "--out", str(tmp_path), "--count", "1", "--seed", "5", "--sr", "4.5")
    assert "asked sr 4.5 · got" in text.stdout
    off = run("generate", str(_song(samples)), "--out", str(tmp_path), "--count", "1", "--seed", "5", "--sr", "4.5",
              "--tolerance", "off", "--json")
    assert off.returncode == 0 and json.loads(off.stdout)[0]["control"] == []
    bad = run("generate", str(_song(samples)), "--out", str(tmp_path), "--tolerance", "-2")
    assert bad.returncode == 2 and "tolerance" in bad.stderr
