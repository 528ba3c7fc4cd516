"""Synthetic songs: seeded, fast, exact onsets that are audible; charts on those onsets at several difficulties."""
import json
import time

import numpy as np
import pytest

from mug_nb.chart import SAMPLE_RATE
from mug_nb.osu import read_osu, read_osz
from mug_nb.synth import (DIFFICULTIES, GENRES, check_playable, chart_for_song, compose, song_info, synth_song,
                          write_sample)


@pytest.fixture(scope="module")
def songs():
    return [synth_song(s, duration=30) for s in range(6)]


def test_seeded_and_distinct():
    a, b = synth_song(5, duration=10), synth_song(5, duration=10)
    assert np.array_equal(a.wave, b.wave) and np.array_equal(a.onsets_ms, b.onsets_ms)
    assert not np.array_equal(a.wave, synth_song(6, duration=10).wave)


def test_sixty_second_songs():
    for s in range(3):  # speed is printed by benchmarks/bench_data.py
        song = synth_song(s, duration=60)
        assert song.wave.shape == (60 * SAMPLE_RATE,) and song.wave.dtype == np.float32


@pytest.mark.parametrize("genre", sorted(GENRES))
def test_every_genre(genre):
    song = synth_song(1, duration=20, genre=genre)
    lo, hi = GENRES[genre]["bpm"]
    assert song.genre == genre and lo <= song.bpm <= hi
    assert np.isfinite(song.wave).all() and 0.5 < np.abs(song.wave).max() <= 1.0
    assert len(song.onsets_of("kick", "snare", "clap")) > 5


def test_onsets_exact_to_the_sample(songs):
    for song in songs:
        on = song.onsets_ms
        samples = on * song.sr / 1000
        assert np.allclose(samples, np.round(samples), atol=1e-6)
        assert on.min() >= song.offset_ms - 1e-6 and on.max() < song.duration * 1000
        assert np.all(np.diff(on) > 0)


def test_note_held_past_the_tail_renders():
    "Seed 2478 (48 s) ends on a chord held longer than the 4 s render tail: it is cut, not an error."
    song = synth_song(2478, duration=48.0)
    assert len(song.wave) == 48 * song.sr and np.isfinite(song.wave).all()


def test_tempo_swing_sections():
    sc = compose(3, bpm=120, duration=60, genre="hiphop", swing=0.3, offset_ms=500)
    assert sc.bpm == 120 and sc.offset_ms == 500
    hats = np.unique(sc.events["time_ms"][sc.events["part"] == "hat"])
    step = 60000 / 120 / 4
    frac = ((hats - 500) / step) % 4                                    # hip-hop swings 8ths: the "and" is late
    assert not np.isclose(frac, 2, atol=1e-3).any() and np.isclose(frac, 2.6, atol=1e-3).sum() > 10
    rock = compose(3, bpm=120, duration=30, genre="funk", swing=0.2, offset_ms=500)
    hats = np.unique(rock.events["time_ms"][np.isin(rock.events["part"], ["hat", "ohat"])])
    frac = ((hats - 500) / step) % 2                                    # funk swings 16ths
    assert not np.isclose(frac, 1, atol=1e-3).any() and np.isclose(frac, 1.2, atol=1e-3).sum() > 10
    names = [s[0] for s in sc.sections]
    assert names[0] == "intro" and "chorus" in names and "verse" in names
    assert (sc.events["part"] == "crash").sum() >= 1                     # chorus starts with a crash


def test_onsets_are_audible(songs):
    """An onset detector on the rendered audio is far stronger at the known onsets than half a 16th later."""
    import librosa
    from mug_nb.chart import MEL_FRAME_MS
    for song in songs:
        env = librosa.onset.onset_strength(y=song.wave, sr=song.sr, hop_length=128, n_fft=512, aggregate=np.median)
        frame = lambda t: np.clip(np.round(t / MEL_FRAME_MS).astype(int), 0, len(env) - 1)
        half = 60000 / song.bpm / 8
        for on in (song.onsets_ms, song.onsets_of("kick", "snare", "clap", "tom")):
            at = np.mean([env[frame(on) + k].mean() for k in range(4)])
            off = np.mean([env[frame(on + half) + k].mean() for k in range(4)])
            assert at > 1.5 * off, (song.name, at, off)


def test_charts_sit_on_known_onsets_and_scale_with_difficulty(songs):
    for song in songs:
        counts = []
        for d in DIFFICULTIES:
            bm = chart_for_song(song, d)
            t = np.array([n.time for n in bm.notes])
            assert len(t) > 5 and bm.key_count == 4 and bm.general["Mode"] == 3
            nearest = np.abs(t[:, None] - song.onsets_ms[None]).min(1)
            assert nearest.max() <= 0.5
            for n in bm.notes:
                if n.end is not None:
                    assert n.end > n.time
            check_playable(bm)
            counts.append(len(t))
        assert all(b >= 0.9 * a for a, b in zip(counts, counts[1:])) and counts[-1] > 1.5 * counts[0], counts


def test_patterns_present():
    stats = dict(chords=0, jacks=0, streams=0, lns=0)
    for s in range(6):
        song = synth_song(s, duration=40)
        for d in ("Hard", "Insane"):
            bm = chart_for_song(song, d)
            by_time = {}
            for n in bm.notes: by_time.setdefault(n.time, []).append(n.column)
            times = sorted(by_time)
            stats["chords"] += sum(len(v) > 1 for v in by_time.values())
            stats["lns"] += sum(n.end is not None for n in bm.notes)
            stats["jacks"] += sum(bool(set(by_time[a]) & set(by_time[b])) for a, b in zip(times, times[1:]))
            step = 60000 / song.bpm / 4
            stats["streams"] += sum(b - a <= step + 1 for a, b in zip(times, times[1:]))
    assert all(v > 10 for v in stats.values()), stats


def test_difficulty_knobs_and_key_count():
    song = synth_song(2, duration=30)
    none = chart_for_song(song, "Hard", ln_p=0.0, chord_p=0.0, jack_p=0.0)
    assert all(n.end is None for n in none.notes)
    assert len({n.time for n in none.notes}) == len(none.notes)
    many = chart_for_song(song, "Hard", ln_p=1.0)
    assert sum(n.end is not None for n in many.notes) > 5
    seven = chart_for_song(song, "Insane", key_count=7)
    assert seven.key_count == 7 and {n.column for n in seven.notes} == set(range(7))
    assert chart_for_song(song, "Hard", seed=1).notes != chart_for_song(song, "Hard", seed=2).notes
    assert chart_for_song(song, "Hard", seed=1).notes == chart_for_song(song, "Hard", seed=1).notes


def test_write_sample_folder_and_osz(tmp_path):
    song = synth_song(4, duration=15)
    folder = write_sample(song, tmp_path / "set", difficulties=("Easy", "Hard"), osz=True)
    names = sorted(p.name for p in folder.iterdir())
    assert "audio.ogg" in names and "onsets.json" in names and sum(n.endswith(".osu") for n in names) == 2
    bm = read_osu(next(folder.glob("*Hard*.osu")))
    assert bm.notes == chart_for_song(song, "Hard").notes and bm.audio_filename == "audio.ogg"
    info = json.loads((folder / "onsets.json").read_text())
    assert np.allclose(info["onsets_ms"], song.onsets_ms) and info["bpm"] == song.bpm
    arc = read_osz(folder.with_suffix(".osz"))
    assert len(arc.charts) == 2 and "audio.ogg" in arc.audio
    from mug_nb.audio import load_audio
    y = load_audio(folder / "audio.ogg")
    assert abs(len(y) - len(song.wave)) < 100
    assert song_info(song)["events"][0]["part"] in song_info(song)["events"][0]["part"]


def test_data_samples_match_their_onsets(samples):
    sets = sorted((samples / "songs").glob("*/onsets.json"))
    if not sets: pytest.skip("data_samples/songs not generated")
    for info_path in sets:
        info = json.loads(info_path.read_text()); on = np.array(info["onsets_ms"])
        charts = list(info_path.parent.glob("*.osu"))
        assert len(charts) >= 2
        for c in charts:
            t = np.array([n.time for n in read_osu(c).notes])
            assert np.abs(t[:, None] - on[None]).min(1).max() <= 0.5


def test_default_knobs_chart_exactly_as_the_shipped_samples(samples):
    "The corner knobs are off by default: the sample charts written before they existed come out note for note."
    from mug_nb.synth import SAMPLE_SONGS
    spec = SAMPLE_SONGS[0]
    folder = samples / "songs" / synth_song(**spec).name
    if not folder.is_dir(): pytest.skip("data_samples/songs not generated")
    song = synth_song(**spec)
    for d in DIFFICULTIES:
        shipped = read_osu(next(folder.glob(f"*[[]{d}[]].osu")))
        assert chart_for_song(song, d).notes == shipped.notes, d


def test_corner_knobs():
    song = synth_song(3, duration=30)
    on = song.onsets_ms
    plain = chart_for_song(song, "Hard", ln_p=0, jack_p=0, chord_p=0)
    grid = chart_for_song(song, "Hard", nps=40, min_gap_beats=0, min_gap_ms=57, grid_ms=60, ln_p=0, jack_p=0, chord_p=0)
    t = np.array([n.time for n in grid.notes])
    assert len(grid.notes) > 1.5 * len(plain.notes)                       # denser than the music's onsets
    assert (np.abs(t[:, None] - on[None]).min(1) > 2).any()               # some rows sit on the grid, not on onsets
    assert np.diff(np.unique(t)).min() >= 57 - 1
    hands = chart_for_song(song, "Hard", chord_all=True, chord_p=1.0, min_chord=3, max_chord=3, jack_p=0, ln_p=0)
    sizes = np.unique([n.time for n in hands.notes], return_counts=True)[1]
    assert (sizes == 3).mean() > 0.9
    full = chart_for_song(song, "Hard", grid_ms=200, ln_fill=True, ln_p=1.0, min_ln_ms=100)
    assert sum(n.end is not None for n in full.notes) > 0.8 * len(full.notes)
    check_playable(full); check_playable(grid); check_playable(hands)
    kw = dict(nps=40, min_gap_beats=0, min_gap_ms=75, grid_ms=80, chord_p=0, jack_p=0, ln_p=0)
    def steps(bm):
        c = [n.column for n in sorted(bm.notes, key=lambda n: n.time)]
        return np.mean([abs(b - a) in (1, 3) for a, b in zip(c, c[1:])])
    assert steps(chart_for_song(song, "Hard", roll_p=0.0, **kw)) < steps(chart_for_song(song, "Hard", **kw)) - 0.1


def test_corner_charts_reach_the_corners():
    "CORNER_CHARTS spans what the four difficulties do not: > 6 stars, LN ratio > 0.8, and several top skillsets."
    from mug_nb.features import SKILLSETS, prompt_from_chart
    from mug_nb.synth import CORNER_CHARTS
    song = synth_song(1000, duration=48)
    ps = [prompt_from_chart(chart_for_song(song, d, seed=j, **o)) for j, (d, o) in enumerate(CORNER_CHARTS)]
    base = [prompt_from_chart(chart_for_song(song, d)) for d in DIFFICULTIES]
    assert max(p["sr"] for p in ps) > 6 > max(p["sr"] for p in base) + 1
    assert max(p["ln_ratio"] for p in ps) > 0.8 and min(p["sr"] for p in ps) < 1
    tops = {max(SKILLSETS[1:], key=lambda k: p[f"{k}_ett"]) for p in ps}
    assert {"stream", "jackspeed", "chordjack"} <= tops
    for j, (d, o) in enumerate(CORNER_CHARTS): check_playable(chart_for_song(song, d, seed=j, **o))
