"""Dataset pipeline: build over a messy Songs folder, resume, split by set, and aligned, augmented samples."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import mug_nb.data as data
from mug_nb.chart import FRAME_MS, MEL_FRAME_MS, array_to_notes
from mug_nb.data import (Augment, ChartDataset, alignment_lag, build_dataset, chart_hash, fit_length,
                         is_rate_edit, onset_strength, read_journal, resize_time, scan_sources, split_by_set)
from mug_nb.osu import Note, read_osu, write_osu
from mug_nb.synth import chart_for_song, synth_song, write_sample

ROOT = Path(__file__).resolve().parents[1]
PEER = ROOT.parent / "shared" / "peer_data"
DUR = 14


def _make_songs(src: Path, peer: bool) -> dict:
    """A Songs-like folder with good sets and every kind of trouble; returns the expected outcome."""
    songs = {s: synth_song(s, duration=DUR) for s in range(4)}
    for s in range(3):
        write_sample(songs[s], src / f"set{s}", difficulties=("Easy", "Hard"), osz=(s == 2))
    shutil.rmtree(src / "set2")                                               # set 2 only as .osz
    easy0 = next((src / "set0").glob("*Easy*.osu")); hard1 = next((src / "set1").glob("*Hard*.osu"))
    (src / "noaudio").mkdir(); shutil.copy(easy0, src / "noaudio" / "x [Easy].osu")
    (src / "set1" / "dup [Copy].osu").write_bytes(hard1.read_bytes())
    (src / "set1" / "fast [Hard 1.1x].osu").write_bytes(hard1.read_bytes())
    (src / "set0" / "std.osu").write_text("osu file format v14\n\n[General]\nAudioFilename: audio.ogg\nMode: 0\n")
    (src / "set0" / "garbage.osu").write_bytes(b"\x00\xff\x13 not a chart at all")
    write_osu(chart_for_song(songs[0], "Hard", key_count=7), src / "set0" / "seven [7K].osu")
    (src / "broken.osz").write_bytes(b"PK\x03\x04 this is not a zip")
    (src / "badaudio").mkdir(); shutil.copy(easy0, src / "badaudio" / "y [Easy].osu")
    (src / "badaudio" / "audio.ogg").write_bytes(b"OggS garbage")
    (src / "silent").mkdir(); shutil.copy(easy0, src / "silent" / "z [Easy].osu")
    import soundfile as sf
    sf.write(src / "silent" / "audio.ogg", np.zeros(22050 * 3, np.float32), 22050, format="OGG", subtype="VORBIS")
    bad = {"std.osu": "osu!mania", "garbage.osu": "", "seven [7K].osu": "7K", "broken.osz": "zip",
           "y [Easy].osu": "cannot read audio", "z [Easy].osu": "silent", "x [Easy].osu": "not found",
           "fast [Hard 1.1x].osu": "rate edit"}
    good = 6
    if peer:
        tri = src / "peer_triangles"; tri.mkdir()
        shutil.copy(PEER / "audio/osu-resources-derived/triangles_transcoded.ogg", tri / "triangles.ogg")
        txt = (PEER / "maps/gosu/cYsmix - triangles (MuangMuangE) [Easy].osu").read_text(encoding="utf-8")
        (tri / "triangles [Easy].osu").write_text(txt.replace("AudioFilename: audio.mp3", "AudioFilename: triangles.ogg"))
        cir = src / "peer_circles"; cir.mkdir()
        shutil.copy(PEER / "audio/osu-resources-derived/circles_transcoded.ogg", cir / "circles.ogg")
        shutil.copy(PEER / "maps/gosu/nekodex - circles_ (MuangMuangE) [Hard].osu", cir / "circles [Hard].osu")
        shutil.copy(PEER / "audio/osu-resources/welcome.osz", src / "welcome.osz")
        bad.update({"circles [Hard].osu": "7K", "welcome.osz": "osu!mania"})
        good += 1
    return dict(bad=bad, good=good, songs=songs)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    base = tmp_path_factory.mktemp("data")
    src = base / "Songs"
    expect = _make_songs(src, PEER.is_dir())
    t0 = time.perf_counter()
    report = build_dataset([src], base / "ds", workers=1, progress=False)
    return dict(base=base, src=src, out=base / "ds", report=report, seconds=time.perf_counter() - t0, **expect)


def _index(out):
    return json.loads((Path(out) / "index.json").read_text())["entries"]


# ---------------------------------------------------------------- filters and small helpers

def test_rate_edit_names():
    for n in ["A - B (C) [Hard 1.1x].osu", "[x0.9].osu", "s [HD 1,25x].osu", "s [Another 1.3].osu", "[0.85x]"]:
        assert is_rate_edit(n), n
    for n in ["A - B (C) [Hard].osu", "[Lv.1.5].osu", "[2.0x].osu", "[4K Insane].osu", "[1.0x].osu"]:
        assert not is_rate_edit(n), n


def test_chart_hash_shift_invariant():
    a = [Note(100, 0), Note(200, 1, 400), Note(200, 3)]
    shifted = [Note(n.time + 77, n.column, None if n.end is None else n.end + 77) for n in a]
    assert chart_hash(a, 4) == chart_hash(shifted[::-1], 4)
    assert chart_hash(a, 4) != chart_hash([Note(100, 0), Note(200, 1, 401), Note(200, 3)], 4)
    assert chart_hash(a, 4) != chart_hash(a, 7)


def test_resize_time_matches_cv2_linear():
    x = np.arange(10, dtype=np.float32)[None]
    # cv2.resize(x, (4, 1), interpolation=INTER_LINEAR): src = (dst + .5) * 2.5 - .5 -> 0.75, 3.25, 5.75, 8.25
    np.testing.assert_allclose(resize_time(x, 4)[0], [0.75, 3.25, 5.75, 8.25])
    # upsampling clamps at the edges: src = (dst + .5) * .5 - .5
    np.testing.assert_allclose(resize_time(np.array([[0., 2.]], np.float32), 4)[0], [0, .5, 1.5, 2])
    assert fit_length(np.ones((2, 5)), 3, start=4).tolist() == [[1, 0, 0], [1, 0, 0]]


def test_split_by_set_properties():
    entries = [dict(set=f"s{i % 23}") for i in range(100)]
    sp = split_by_set(entries, 0.2)
    assert set(sp.values()) == {"train", "val"} and list(sp.values()).count("val") == round(0.2 * 23)
    assert split_by_set(entries[::-1], 0.2) == sp and split_by_set(entries, 0.2, seed=1) != sp
    assert split_by_set([dict(set="a")], 0.5) == {"a": "train"}


# ---------------------------------------------------------------- build_dataset

def test_build_indexes_good_and_reports_bad(built):
    r, out = built["report"], built["out"]
    assert r["charts"] == built["good"], r
    reasons = {Path(b["path"].split(":")[-1] if b["path"].endswith(".osu") and ".osz:" in b["path"]
                    else b["path"]).name: b["reason"] for b in r["bad"]}
    for name, words in built["bad"].items():
        assert name in reasons, (name, sorted(reasons))
        assert words in reasons[name], (name, reasons[name])
    assert len(r["bad"]) == len(built["bad"])
    assert r["n_duplicates"] == 1 and "dup [Copy].osu" in r["duplicates"][0]["path"] + r["duplicates"][0]["reason"]
    saved = json.loads((out / "report.json").read_text())
    assert saved["charts"] == r["charts"] and saved["n_bad"] == r["n_bad"]
    idx = _index(out)
    assert len(idx) == r["charts"] and len({e["chart_hash"] for e in idx}) == len(idx)
    for e in idx:
        assert e["key_count"] == 4 and e["mel_key"] and (out / "mel" / f"{e['mel_key']}.npy").exists()
        assert e["features"].get("sr", 0) > 0 and "ett" in e["features"]
    from mug_nb.features import FeatureStore
    with FeatureStore(out / "features.sqlite") as store:
        assert len(store) == len(idx) and all(e["chart_hash"] in store for e in idx)


def test_no_set_in_both_splits(built):
    idx = _index(built["out"])
    splits = {}
    for e in idx: splits.setdefault(e["set"], set()).add(e["split"])
    assert all(len(v) == 1 for v in splits.values())
    assert {e["split"] for e in idx} == {"train", "val"}
    assert sum(e["split"] == "val" for e in idx) == built["report"]["val"]


def _stamps(folder):
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in Path(folder).rglob("*")}


def test_second_run_does_no_work(built, monkeypatch):
    def boom(*a, **k): raise AssertionError("work was done on a second run")
    for name in ("process_unit", "read_journal", "append_journal", "read_osu", "_finish", "_atomic_write_text"):
        monkeypatch.setattr(data, name, boom)                      # nothing read but the listings, nothing written
    monkeypatch.setattr("mug_nb.audio.log_mel", boom)
    before = _stamps(built["out"])
    r = build_dataset([built["src"]], built["out"], workers=1, progress=False)
    assert r["processed"] == 0 and r["cached"] == r["units"] and r["charts"] == built["report"]["charts"]
    assert r["up_to_date"] and "nothing new" in r["note"] and not built["report"]["up_to_date"]
    assert _stamps(built["out"]) == before                         # not one file created or touched
    assert len(r["bad"]) == len(built["report"]["bad"])           # bad files stay reported


def test_incremental_runs_redo_only_what_changed(tmp_path, monkeypatch):
    src, out = tmp_path / "Songs", tmp_path / "ds"
    for s in range(3):
        write_sample(synth_song(60 + s, duration=DUR), src / f"set{s}", difficulties=("Easy", "Hard"))
    first = build_dataset([src], out, workers=1, progress=False)
    assert first["processed"] == 3 and first["charts"] == 6 and not first["up_to_date"]
    real, calls = data.process_unit, []
    monkeypatch.setattr(data, "process_unit", lambda u, *a, **k: calls.append(Path(u.path).name) or real(u, *a, **k))
    before = _stamps(out)
    assert build_dataset([src], out, workers=1, progress=False)["up_to_date"] and calls == [] and _stamps(out) == before
    hard = next((src / "set1").glob("*Hard*.osu"))                 # edit one chart: only its set is redone
    bm = read_osu(hard); write_osu(bm.with_notes(bm.notes[:-1]), hard)
    r = build_dataset([src], out, workers=1, progress=False)
    assert calls == ["set1"] and r["processed"] == 1 and r["cached"] == 2 and not r["up_to_date"]
    assert _stamps(out) != before and build_dataset([src], out, workers=1, progress=False)["up_to_date"]
    shutil.rmtree(src / "set2")                                    # a set removed: the index is rebuilt without it
    r = build_dataset([src], out, workers=1, progress=False)
    assert calls == ["set1"] and r["charts"] == 4 and not r["up_to_date"] and len(_index(out)) == 4
    r = build_dataset([src], out, workers=1, progress=False, val_fraction=0.5)   # other split settings: re-split
    assert not r["up_to_date"] and calls == ["set1"]


def test_new_set_is_the_only_work(built, tmp_path):
    src = tmp_path / "Songs"; shutil.copytree(built["src"], src)
    out = tmp_path / "ds"; shutil.copytree(built["out"], out)
    # the copied journal refers to the old source paths: a different source is new work, so rebuild it first
    build_dataset([src], out, workers=1, progress=False)
    write_sample(synth_song(50, duration=DUR), src / "newset", difficulties=("Hard",))
    r = build_dataset([src], out, workers=1, progress=False)
    assert r["processed"] == 1 and r["charts"] == built["report"]["charts"] + 1


def test_interrupted_run_resumes_to_same_index(built, tmp_path, monkeypatch):
    real, calls = data.process_unit, []
    def flaky(*a, **k):
        calls.append(1)
        if len(calls) == 4: raise KeyboardInterrupt("simulated kill")
        return real(*a, **k)
    monkeypatch.setattr(data, "process_unit", flaky)
    with pytest.raises(KeyboardInterrupt):
        build_dataset([built["src"]], tmp_path / "ds", workers=1, progress=False)
    assert len(read_journal(tmp_path / "ds" / "journal.jsonl")) == 3 and not (tmp_path / "ds" / "index.json").exists()
    monkeypatch.setattr(data, "process_unit", real)
    r = build_dataset([built["src"]], tmp_path / "ds", workers=1, progress=False)
    assert r["processed"] == r["units"] - 3
    assert (tmp_path / "ds" / "index.json").read_bytes() == (built["out"] / "index.json").read_bytes()


def test_torn_journal_line_is_redone(built, tmp_path):
    out = tmp_path / "ds"
    build_dataset([built["src"]], out, workers=1, progress=False, max_units=2)
    with open(out / "journal.jsonl", "ab") as f: f.write(b'{"key": "dir:/half-writ')     # a torn last line
    assert len(read_journal(out / "journal.jsonl")) == 2
    r = build_dataset([built["src"]], out, workers=1, progress=False)
    assert r["processed"] == r["units"] - 2
    assert (out / "index.json").read_bytes() == (built["out"] / "index.json").read_bytes()


@pytest.mark.slow
def test_killed_subprocess_resumes_to_same_index(built, tmp_path):
    """A real SIGKILL in the middle of a build (each chart's features take 0.4 s in the child)."""
    out = tmp_path / "ds"
    code = (f"import time, mug_nb.data as d\n"
            f"def slow(bm):\n    time.sleep(0.4); return d._default_features(bm)\n"
            f"d.build_dataset([{str(built['src'])!r}], {str(out)!r}, workers=1, progress=False, feature_fn=slow)\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    p = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and len(read_journal(out / "journal.jsonl")) < 3: time.sleep(0.05)
        assert p.poll() is None, "the build finished before it could be killed"
        os.kill(p.pid, signal.SIGKILL)
    finally:
        p.wait(30)
    n_done = len(read_journal(out / "journal.jsonl"))
    assert 3 <= n_done < built["report"]["units"] and not (out / "index.json").exists()
    r = build_dataset([built["src"]], out, workers=1, progress=False)
    assert r["processed"] == r["units"] - n_done
    assert (out / "index.json").read_bytes() == (built["out"] / "index.json").read_bytes()


def test_parallel_build_gives_same_index(built, tmp_path):
    r = build_dataset([built["src"]], tmp_path / "ds", workers=2, progress=False)
    assert r["charts"] == built["report"]["charts"] and r["n_bad"] == built["report"]["n_bad"]
    assert (tmp_path / "ds" / "index.json").read_bytes() == (built["out"] / "index.json").read_bytes()


def test_scan_sources(built):
    units = scan_sources([built["src"]])
    kinds = sorted(u.kind for u in units)
    assert kinds.count("osz") == 2 + PEER.is_dir() and all(Path(u.path).is_absolute() for u in units)
    single = scan_sources([next((built["src"] / "set0").glob("*Easy*.osu"))])
    assert len(single) == 1 and single[0].files
    with pytest.raises(data.DataError): build_dataset([built["base"] / "nope"], built["base"] / "x", progress=False)
    assert not [u for u in scan_sources([built["base"]], exclude=built["out"]) if str(built["out"]) in u.path]
    assert [u for u in scan_sources([built["base"]]) if str(built["out"]) in u.path]     # (its extracted .osz)


# ---------------------------------------------------------------- ChartDataset

def test_item_shapes_and_types(built):
    ds = ChartDataset(built["out"], split=None, seed=0)
    it = ds[0]
    assert it["note"].shape == (16, 4096) and it["note"].dtype == torch.float32
    assert it["valid_flag"].shape == (4096,) and it["audio"].shape == (128, 32768)
    assert it["feature"].shape == (21,) and it["feature"].dtype == torch.int64
    assert set(it["meta"]) >= {"id", "set", "rate", "mirror", "shift_ms", "pitch"}
    assert len(ChartDataset(built["out"], "train")) + len(ChartDataset(built["out"], "val")) == len(ds)
    # audio is zero from 2 s after the last valid note frame (tail masking)
    last = int(np.flatnonzero(it["valid_flag"].numpy())[-1]) + 1
    cut = int((last * FRAME_MS + 2000) / MEL_FRAME_MS) + 1
    assert it["audio"][:, cut:].abs().sum() == 0 and it["audio"][:, :cut].abs().sum() > 0


def test_configurable_lengths_and_loader(built):
    ds = ChartDataset(built["out"], split=None, note_frames=256, crop="random", augment=Augment.original(), seed=3)
    dl = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=0)
    b = next(iter(dl))
    assert b["note"].shape == (3, 16, 256) and b["audio"].shape == (3, 128, 2048) and b["feature"].shape == (3, 21)


def _synthetic_items(built):
    """Entries of synthetic sets with their known onsets (from the set's onsets.json)."""
    out = []
    ds = ChartDataset(built["out"], split=None)
    for i, e in enumerate(ds.entries):
        osu = Path(e["osu"]) if os.path.isabs(e["osu"]) else built["out"] / e["osu"]
        info = osu.parent / "onsets.json"
        if info.exists(): out.append((i, np.array(json.loads(info.read_text())["onsets_ms"])))
    assert len(out) >= 4
    return out


AUGS = {
    "none": Augment(),
    "mirror": Augment(mirror_p=1),
    "shuffle": Augment(random_p=1),
    "mirror_at_interval": Augment(mirror_at_interval_p=1),
    "rate_fast": Augment(rate_p=1, rate=(1.3, 1.3)),
    "rate_slow": Augment(rate_p=1, rate=(0.8, 0.8)),
    "shift": Augment(shift_p=1, shift_max_ms=3000),
    "pitch": Augment(pitch_p=1),
    "freq_mask": Augment(freq_mask_p=1),
    "dropout": Augment(feature_dropout_p=1),
    "original": Augment.original(),
    "everything": Augment(mirror_p=.5, random_p=.5, mirror_at_interval_p=.3, rate_p=1, rate=(.85, 1.2), shift_p=1,
                          shift_max_ms=2000, pitch_p=1, freq_mask_p=1, feature_dropout_p=.5),
}


def _aligned_ratio(note, audio):
    """Mean onset strength at the note heads over the mean elsewhere."""
    env = onset_strength(audio.numpy())
    heads = np.unique([round(n.time / MEL_FRAME_MS) for n in array_to_notes(note.numpy(), 4)])
    heads = heads[heads < len(env) - 3]
    at = np.mean([env[heads + k].mean() for k in range(3)])
    return at / (env[env > 0].mean() + 1e-9)


@pytest.fixture(scope="module")
def base_lags(built):
    """Lag between notes and audio onsets without augmentation (sounds peak a few mel frames after they start)."""
    ds = ChartDataset(built["out"], split=None, seed=0)
    return {i: alignment_lag(ds[i]["note"], ds[i]["audio"], max_lag=24) for i, _ in _synthetic_items(built)}


@pytest.mark.parametrize("name", list(AUGS))
def test_augmentation_keeps_notes_on_known_onsets(built, base_lags, name):
    for crop_kw in (dict(), dict(note_frames=256, crop="random")):
        ds = ChartDataset(built["out"], split=None, augment=AUGS[name], seed=11, **crop_kw)
        for i, onsets in _synthetic_items(built)[:3]:
            it = ds[i]; m = it["meta"]
            notes = array_to_notes(it["note"].numpy(), 4)
            assert notes, name
            offset = m["shift_ms"] - m["start_ms"]
            expected = np.trunc(np.round(onsets)) / m["rate"] + offset
            t = np.array([n.time for n in notes])
            err = np.abs(t[:, None] - expected[None]).min(1)
            assert err.max() <= 1.5, (name, m, err.max())
            # the audio moved with the notes: onsets are strong where the notes are, and the best lag is ~0
            assert abs(base_lags[i]) <= 5
            assert abs(alignment_lag(it["note"], it["audio"], max_lag=24) - base_lags[i]) <= 3, (name, m)
            # aligned: 1.4-19 here; notes one note frame (8 mel frames) off: 0.0-0.6. Frequency masks can hide the
            # onset band, so the bar sits between the two (the items drawn depend on the temp path via their ids)
            assert _aligned_ratio(it["note"], it["audio"]) > 1.0, (name, m)


def test_alignment_check_catches_misalignment(built, base_lags):
    """Negative control: notes at one rate with audio at another, or shifted notes, are detected."""
    i, _ = _synthetic_items(built)[0]
    fast = ChartDataset(built["out"], split=None, augment=Augment(rate_p=1, rate=(1.3, 1.3)), seed=0)[i]
    plain = ChartDataset(built["out"], split=None, seed=0)[i]
    assert _aligned_ratio(fast["note"], plain["audio"]) < 0.6 * _aligned_ratio(plain["note"], plain["audio"])
    late = torch.roll(plain["note"], 1, dims=1)                        # one note frame = 8 mel frames late
    assert alignment_lag(late, plain["audio"], max_lag=24) <= base_lags[i] - 6


def test_column_augmentations(built):
    i, _ = _synthetic_items(built)[0]
    base = array_to_notes(ChartDataset(built["out"], split=None, seed=5)[i]["note"].numpy(), 4)
    mir = array_to_notes(ChartDataset(built["out"], split=None, seed=5, augment=AUGS["mirror"])[i]["note"].numpy(), 4)
    key = lambda ns: sorted((n.time, n.column, n.end) for n in ns)
    assert key(mir) == key([Note(n.time, 3 - n.column, n.end) for n in base])
    it = ChartDataset(built["out"], split=None, seed=5, augment=AUGS["shuffle"])[i]
    sh = array_to_notes(it["note"].numpy(), 4)
    assert sorted(n.time for n in sh) == sorted(n.time for n in base)
    import itertools                                                  # one permutation for the whole chart
    assert any(key(sh) == key([Note(n.time, p[n.column], n.end) for n in base]) for p in itertools.permutations(range(4)))


def test_audio_augmentations(built):
    i, _ = _synthetic_items(built)[0]
    base = ChartDataset(built["out"], split=None, seed=5)[i]
    pit = ChartDataset(built["out"], split=None, seed=5, augment=AUGS["pitch"])[i]
    b = pit["meta"]["pitch"]
    assert 1 <= abs(b) <= 4 and torch.equal(pit["note"], base["note"])
    if b > 0: assert torch.equal(pit["audio"][b:], base["audio"][:-b]) and pit["audio"][:b].abs().sum() == 0
    else: assert torch.equal(pit["audio"][:b], base["audio"][-b:]) and pit["audio"][b:].abs().sum() == 0
    fm = ChartDataset(built["out"], split=None, seed=6, augment=Augment(freq_mask_p=1, freq_mask_num=15))
    zero_rows = [int((fm[i]["audio"].abs().sum(1) == 0).sum()) - int((base["audio"].abs().sum(1) == 0).sum())
                 for _ in range(8)]
    assert max(zero_rows) > 0 and max(zero_rows) < 15


def test_prompt_dropout(built):
    from mug_nb.features import DEFAULT_VOCAB, prompt_to_ids
    i, _ = _synthetic_items(built)[0]
    full = ChartDataset(built["out"], split=None, seed=5)[i]["feature"]
    gone = ChartDataset(built["out"], split=None, seed=5, augment=AUGS["dropout"])[i]["feature"]
    assert torch.equal(gone, torch.from_numpy(prompt_to_ids({}, DEFAULT_VOCAB)))
    assert (full != gone).sum() >= 5
    half = ChartDataset(built["out"], split=None, seed=5, augment=Augment(feature_dropout_p=.5))
    kept = np.mean([(half[i]["feature"] == full).float().mean().item() for _ in range(10)])
    assert 0.3 < kept < 0.95


def test_peer_real_chart_aligned(built):
    if not PEER.is_dir(): pytest.skip("../shared/peer_data is not available")
    ds = ChartDataset(built["out"], split=None, seed=0)
    i = next(k for k, e in enumerate(ds.entries) if "triangles" in e["osu"])
    it = ds[i]
    assert len(array_to_notes(it["note"].numpy(), 4)) == 155
    assert abs(alignment_lag(it["note"], it["audio"], max_lag=24)) <= 4
