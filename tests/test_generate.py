"""Generation: post-processing, file writing, the generate() contract, inpainting, bad input."""
import os
import warnings

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
import mug_nb.generate as G  # noqa: E402  (our own module: a broken import fails, never skips)
from mug_nb.osu import Note, read_osu, read_osz, dumps_osu  # noqa: E402
from mug_nb import postprocess as P  # noqa: E402
from mug_nb import export as E  # noqa: E402


def grid_notes(bpm=180.0, offset=250.0, n=300, jitter=3.0, seed=0):
    rng = np.random.default_rng(seed)
    beat = 60000 / bpm
    k = np.sort(rng.choice(np.arange(2 * n), n, replace=False))
    t = offset + k * beat / 2 + rng.normal(0, jitter, n)
    return [Note(int(round(x)), int(c), None) for x, c in zip(t, rng.integers(0, 4, n))]


# ---------------------------------------------------------------- post-processing
@pytest.mark.parametrize("bpm,offset", [(180.0, 250.0), (152.3, 1000.0), (240.0, 37.0)])
def test_estimate_timing_recovers_grid(bpm, offset):
    est_bpm, est_off = P.estimate_timing([n.time for n in grid_notes(bpm, offset)])
    assert abs(est_bpm - bpm) < 0.3
    beat = 60000 / est_bpm
    assert abs(((est_off - offset) / beat * 2 + 0.5) % 1 - 0.5) * beat / 2 < 4   # on the true 1/2 grid


def test_estimate_timing_degenerate():
    assert P.estimate_timing([]) == (120.0, 0.0)
    assert P.estimate_timing([500])[0] == 120.0


def test_snap_notes_moves_onto_grid_and_keeps_far_notes():
    tp = P.make_timing_point(100.0, 120.0)        # beat 500 ms
    notes = [Note(596, 0, None), Note(1229, 1, 1352), Note(1290, 2, None)]
    out = P.snap_notes(notes, [tp], max_div=4)
    assert out[0].time == 600 and out[1].time == 1225 and out[1].end == 1350
    assert out[2].time == 1290                     # 15 ms from any 1/4 line, 1/32 not allowed: untouched
    assert P.snap_notes(notes, [tp], max_div=1)[1].time == 1229   # 1/4 not allowed


def test_remove_minijacks_rules():
    # a final jack (nothing follows) is kept
    assert P.remove_minijacks([Note(0, 0), Note(50, 0)]) == [Note(0, 0), Note(50, 0)]
    # otherwise the current note moves to the other finger of the same hand
    out = P.remove_minijacks([Note(0, 0), Note(50, 0), Note(200, 3)])
    assert sorted(n.column for n in out) == [0, 1, 3] and len(out) == 3
    # no free column: one note is removed
    busy = [Note(0, c) for c in range(4)] + [Note(50, 0), Note(50, 1), Note(50, 2), Note(50, 3), Note(150, 2)]
    out = P.remove_minijacks(busy)
    assert len(out) < len(busy) and P.minijack_count(out) < P.minijack_count(busy)


def test_remove_minijacks_reduces_count_on_dense_chart():
    rng = np.random.default_rng(1)
    notes = [Note(int(t), int(c)) for t, c in zip(np.sort(rng.integers(0, 30000, 800)), rng.integers(0, 4, 800))]
    out = P.remove_minijacks(notes, 90)
    assert P.minijack_count(out, 90) < 0.1 * P.minijack_count(notes, 90)
    assert all(0 <= n.column < 4 for n in out)


def test_timing_points_from_beats_tempo_change():
    beats = np.r_[np.arange(0, 10000, 500.0), 10000 + np.arange(0, 10000, 400.0)]
    tps = P.timing_points_from_beats(beats)
    assert [round(tp.bpm) for tp in tps] == [120, 150]
    with pytest.raises(P.PostprocessError):
        P.timing_points_from_beats([0, 500])


def test_postprocess_single_timing_point_and_no_minijacks_left():
    notes, tps = P.postprocess(grid_notes(), snap=16, jack_interval=90)
    assert len(tps) == 1 and abs(tps[0].bpm - 180) < 0.3
    assert notes == sorted(notes, key=lambda n: (n.time, n.column))


def test_make_beatmap_template_and_ai_tags():
    bm = E.make_beatmap(grid_notes(n=20), [P.make_timing_point(0, 120)], title="T", artist="A", prompt="sr=4")
    back = read_osu(dumps_osu(bm))
    assert back.metadata["AIPrompt"] == "sr=4" and back.metadata["AIMode"].startswith("mug_nb")
    assert back.general["Mode"] == "3" and back.key_count == 4 and len(back.notes) == 20


def test_unique_path_never_overwrites(tmp_path):
    p = tmp_path / "a.osz"
    assert E.unique_path(p) == p
    p.write_text("x")
    q = E.unique_path(p); q.write_text("y")
    r = E.unique_path(p)
    assert len({p, q, r}) == 3 and r.name == "a (3).osz"


def test_latent_length_rule():
    assert G.latent_length(32768) == 544
    assert [G.latent_length(n) for n in (1, 2047, 2048, 4095)] == [32, 32, 64, 64]


# ---------------------------------------------------------------- the model side
@pytest.fixture(scope="module")
def model():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return G.load_bundled()


@pytest.fixture(scope="module")
def song_file(tmp_path_factory):
    import soundfile as sf
    from mug_nb.synth import synth_song
    s = synth_song(seed=2, duration=14.0)
    p = tmp_path_factory.mktemp("song") / "song.wav"
    sf.write(p, s.wave, s.sr)
    return p


def test_generate_same_seed_same_charts(model, song_file):
    a = G.generate(song_file, {"sr": 3.0}, count=2, steps=4, seed=11, model=model)
    b = G.generate(song_file, {"sr": 3.0}, count=2, steps=4, seed=11, model=model)
    assert len(a) == 2 and [x.notes for x in a] == [x.notes for x in b]
    assert "seed=11" in a[0].metadata["AIPrompt"]
    # variant i is seeded with seed + i (batch size may change float rounding, so allow a few ms here and there);
    # the control loop is off here, since with it on a later variant starts its search where the one before landed
    a = G.generate(song_file, {"sr": 3.0}, count=2, steps=4, seed=11, model=model, tolerance=None)
    c = G.generate(song_file, {"sr": 3.0}, count=1, steps=4, seed=12, model=model, tolerance=None)
    same = len(set(c[0].notes) & set(a[1].notes)) / max(1, len(a[1].notes))
    assert same > 0.95 and abs(len(c[0].notes) - len(a[1].notes)) <= 0.05 * len(a[1].notes) + 1


def test_steps_and_guidance_default_to_the_models_recommendation(model, song_file, monkeypatch):
    "generate(steps=None, cfg_scale=None) reads config.json's `sampling`; without one, the original's 50 and 5."
    monkeypatch.setattr(model, "meta", {**getattr(model, "meta", {}), "sampling": {"cfg_scale": 1.5, "steps": 3}})
    text = G.generate(song_file, {"sr": 3.0}, count=1, seed=1, model=model)[0].metadata["AIPrompt"]
    assert "steps=3" in text and "cfg=1.5" in text
    assert "steps=4" in G.generate(song_file, {"sr": 3.0}, count=1, steps=4, seed=1, model=model)[0].metadata["AIPrompt"]
    bare = type("Bare", (), {})()
    assert G.sampling_steps(bare) == 50 and G.guidance_scale(bare) == 5.0


def test_generate_to_files_reads_back_with_rosu(model, song_file, tmp_path):
    import rosu_pp_py as rosu
    paths = G.generate_to_files(song_file, tmp_path, {"sr": 3.0}, count=2, steps=4, seed=1, model=model)
    again = G.generate_to_files(song_file, tmp_path, {"sr": 3.0}, count=2, steps=4, seed=1, model=model)
    assert len(set(paths) | set(again)) == 4 and all(p.suffix == ".osz" for p in paths)
    arc = read_osz(paths[0])
    assert list(arc.audio.values()) == [song_file.read_bytes()]          # original bytes, no re-encoding
    (name, bm), = arc.charts.items()
    assert bm.audio_filename in arc.audio
    text = dumps_osu(bm)
    if bm.notes:
        attrs = rosu.Difficulty().calculate(rosu.Beatmap(content=text))
        assert attrs.stars >= 0
    assert paths[0].with_suffix(".png").exists()


@pytest.mark.parametrize("case", ["missing", "garbage", "silent", "prompt", "folder-empty"])
def test_bad_input_is_one_line_generate_error(case, model, song_file, tmp_path):
    import soundfile as sf
    audio, prompt = song_file, {"sr": 3.0}
    if case == "missing": audio = tmp_path / "nope.ogg"
    elif case == "garbage": audio = tmp_path / "bad.ogg"; audio.write_bytes(b"not audio at all" * 100)
    elif case == "silent": audio = tmp_path / "silent.wav"; sf.write(audio, np.zeros(22050 * 3, np.float32), 22050)
    elif case == "prompt": prompt = {"sr": 99}
    elif case == "folder-empty": audio = tmp_path / "empty"; audio.mkdir()
    with pytest.raises(G.GenerateError) as e:
        G.generate_to_files(audio, tmp_path / "out", prompt, count=1, steps=2, seed=1, model=model)
    assert isinstance(e.value, ValueError) and "\n" not in str(e.value) and str(e.value)


def test_inpaint_keeps_notes_outside_range(model, song_file, tmp_path):
    from mug_nb.osu import write_osu
    rng = np.random.default_rng(0)
    notes = sorted({Note(int(t), int(c)) for t, c in zip(rng.integers(0, 13000, 120), rng.integers(0, 4, 120))},
                   key=lambda n: (n.time, n.column))
    notes.append(Note(3000, 0, 8000)) if not any(n.column == 0 and 3000 <= n.time <= 8000 for n in notes) else None
    bm = E.make_beatmap(notes, [P.make_timing_point(0, 150)], title="song", audio_filename="song.wav")
    out = G.inpaint(bm, song_file, 5000, 9000, {"sr": 3.0}, steps=4, seed=3, model=model)
    outside = lambda ns: [n for n in ns if not 5000 <= n.time < 9000]
    assert outside(out.notes) == outside(sorted(notes, key=lambda n: (n.time, n.column)))
    assert all(not (5000 <= n.time < 9000) or n.end is None or n.end < 9000 for n in out.notes)
    assert "inpainted" in out.metadata["Version"]
    src = write_osu(bm, tmp_path / "c.osu")
    p = G.inpaint_to_file(src, song_file, 5000, 9000, prompt={"sr": 3.0}, steps=4, seed=3, model=model)
    assert p != src and p.exists() and outside(read_osu(p).notes) == outside(read_osu(src).notes)


@pytest.mark.parametrize("param", ["v", "x0"])
def test_inpaint_with_other_parameterisations(param, song_file):
    "`inpaint` goes through `ddim_sample`, so v- and x0-prediction models inpaint too (and keep the known part)."
    import torch
    from mug_nb.model import Config, build_model
    cfg = Config.tiny(); cfg.diffusion.parameterization = param
    torch.manual_seed(0)
    m = build_model(cfg).eval()
    assert m.parameterization == param
    notes = [Note(t, (t // 250) % 4) for t in range(500, 12000, 250)]
    bm = E.make_beatmap(notes, [P.make_timing_point(0, 120)], title="song", audio_filename="song.wav")
    out = G.inpaint(bm, song_file, 4000, 6000, {"sr": 3.0}, steps=4, seed=1, model=m)
    assert [n for n in out.notes if not 4000 <= n.time < 6000] == [n for n in notes if not 4000 <= n.time < 6000]


def test_invert_chart(tmp_path):
    from mug_nb.osu import write_osu
    bm = E.make_beatmap(grid_notes(n=200), [P.make_timing_point(250, 180)], title="t")
    p = write_osu(bm, tmp_path / "c.osu")
    prompt = G.invert_chart(p)
    assert isinstance(prompt, dict) and prompt
    with pytest.raises(G.GenerateError):
        G.invert_chart(tmp_path / "missing.osu")


def test_postprocess_leaves_no_overlaps_in_a_column():
    rng = np.random.default_rng(3)
    t = np.sort(rng.integers(0, 20000, 600))
    notes = [Note(int(x), int(c), int(x) + int(rng.integers(50, 800)) if rng.random() < 0.3 else None)
             for x, c in zip(t, rng.integers(0, 4, 600))]
    out, _ = P.postprocess(notes, snap=4, jack_interval=90)
    for c in range(4):
        col = sorted((n for n in out if n.column == c), key=lambda n: n.time)
        for a, b in zip(col, col[1:]):
            assert b.time > (a.end if a.end is not None else a.time), (a, b)


def test_snap_times_is_snap_time_for_every_time():
    from mug_nb.postprocess import SNAP_DIVISORS, make_timing_point, snap_time, snap_times
    rng = np.random.default_rng(5)
    tps = [make_timing_point(120.0, 174.0), make_timing_point(20000.0, 150.5)]
    x = np.concatenate([rng.uniform(-300, 40000, 2000), [120.0, 20000.0, 20000.0 + 60000 / 150.5 / 3]])
    got = snap_times(x, tps)
    want = [snap_time(t, 174.0, 120.0) if t < 20000 else snap_time(t, 150.5, 20000.0) for t in x]
    assert got.tolist() == want
    assert (got != np.trunc(x)).sum() > 100                       # most times moved onto a grid line
    assert snap_times(x, tps, divisors=(1,)).tolist() == [snap_time(t, 174.0, 120.0, (1,)) if t < 20000 else
                                                         snap_time(t, 150.5, 20000.0, (1,)) for t in x]
