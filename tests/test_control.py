"""Closed-loop control: the draft's knobs, pattern emphasis, goals from a prompt, the search, and generate()'s use of it."""
import os
import warnings

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
from mug_nb import chart as C  # noqa: E402
from mug_nb import control as K  # noqa: E402
from mug_nb import generate as G  # noqa: E402
from mug_nb.features import ln_ratio, star_rating  # noqa: E402
from mug_nb.osu import Note  # noqa: E402
from mug_nb.refiner import apply_rows  # noqa: E402
from mug_nb import postprocess as P  # noqa: E402


def toy_draft(T=600, seed=0, rows=True):
    "Logits whose head scores fall off smoothly, so that every density adds notes; rows from the same scores."
    rng = np.random.default_rng(seed)
    a = rng.normal(-4, 3, (16, T)).astype(np.float32)
    a[4:8] = rng.uniform(0, 1, (4, T)); a[12:] = rng.uniform(0, 1, (4, T))
    if not rows: return K.Draft(a)
    return K.Draft(a, a[:4].max(0) + rng.normal(0, 1, T).astype(np.float32), rng.uniform(0, 1, T).astype(np.float32))


def bare(notes):
    return K._chart_of(notes)


def test_render_at_rest_is_the_plain_decoder():
    d = toy_draft()
    merged = apply_rows(d.logits, d.row_logit, d.row_offset, 4)
    assert K.render(d) == C.array_to_notes(merged, 4, logits=True)
    plain = toy_draft(rows=False)
    assert K.render(plain) == C.array_to_notes(plain.logits, 4, logits=True)


@pytest.mark.parametrize("rows", [True, False])
def test_density_adds_notes_and_holds_add_long_notes(rows):
    d = toy_draft(rows=rows)
    counts = [len(K.render(d, K.Knobs(density=x))) for x in (-4, 0, 4, 8)]
    assert counts == sorted(counts) and counts[0] < counts[-1]
    lns = [sum(n.end is not None for n in K.render(d, K.Knobs(holds=h))) for h in (-8, 0, 8)]
    assert lns == sorted(lns) and lns[0] < lns[-1]


def test_render_drops_notes_after_the_song():
    d = toy_draft(); d.duration_ms = 5000
    assert K.render(d, K.Knobs(density=8)) and max(n.time for n in K.render(d, K.Knobs(density=8))) < 5000


def rows_of(notes):
    return [sorted(n.column for n in r) for r in K._rows(notes)]


def test_emphasise_keeps_times_and_writes_the_pattern():
    notes = [Note(t, c) for t in range(0, 20000, 120) for c in (0, 1)]          # jumps every 120 ms
    times = sorted({n.time for n in notes})
    for style in ("stream", "jumpstream", "handstream", "jackspeed", "chordjack", "technical"):
        out = K.emphasise(notes, style, 1.0)
        assert sorted({n.time for n in out}) == times, style
    stream = rows_of(K.emphasise(notes, "stream", 1.0))
    assert all(len(r) == 1 for r in stream) and all(a != b for a, b in zip(stream, stream[1:]))
    jacks = rows_of(K.emphasise(notes, "jackspeed", 1.0))
    assert all(a == b for a, b in zip(jacks, jacks[1:]))                       # 120 ms apart: a jack is allowed
    hands = rows_of(K.emphasise(notes, "handstream", 1.0))
    assert [len(r) for r in hands[:4]] == [3, 1, 3, 1] and all(not set(a) & set(b) for a, b in zip(hands, hands[1:]))
    half = rows_of(K.emphasise(notes, "stream", 0.5))
    assert 0.35 < np.mean([len(r) == 1 for r in half]) < 0.65                  # strength: the share of rows


def test_emphasise_never_writes_a_jack_closer_than_the_limit():
    notes = [Note(t, 0) for t in range(0, 5000, 60)]                            # a 60 ms jack in one column
    out = rows_of(K.emphasise(notes, "jackspeed", 1.0))
    assert all(a != b for a, b in zip(out, out[1:]))


def test_emphasise_makes_its_pattern_a_top_skillset():
    notes = [Note(t, c) for t in range(0, 30000, 110) for c in (0, 2)]
    for style in ("jackspeed", "chordjack", "jumpstream", "stream"):
        m = K.measure(bare(K.emphasise(notes, style, 1.0)))
        assert style in K.top_patterns(m), (style, K.top_patterns(m, 4))


def test_goals_from_prompts():
    g = K.goals({"sr": 4.5, "hb": 1, "stream": True, "rank_status": "ranked", "jackspeed": False})
    assert [(x.key, x.knob) for x in g] == [("sr", "density"), ("ln_ratio", "holds"), ("stream", "style")]
    assert (g[0].lo, g[0].hi) == (4.3, 4.7) and (g[1].lo, g[1].hi) == K.TYPE_RANGES["hb"]
    assert K.goals({"ett": 20}, tolerance=2)[0] == K.Goal("overall", 20.0, 18.0, 22.0, "density")
    assert K.goals({"stream_ett": 15})[0].key == "stream"
    assert K.goals({"ln_ratio": 0.3, "ln": 1})[0].asked == 0.3
    assert K.goals({"sr": 3}, tolerance={"sr": 0.5})[0].hi == 3.5
    assert K.goals({}) == []


@pytest.mark.parametrize("bad", [-1, {"stars": 0.1}, {"sr": -0.1}])
def test_bad_tolerance(bad):
    with pytest.raises(K.ControlError):
        K.goals({"sr": 3}, bad)


def test_goal_error_is_the_distance_outside_the_range():
    g = K.Goal("sr", 4.0, 3.9, 4.1, "density")
    assert g.error({"sr": 4.05}) == 0 and g.error({"sr": 3.5}) == pytest.approx(0.4) and g.error({"sr": 4.6}) == pytest.approx(0.5)


@pytest.mark.parametrize("prompt", [{"sr": 1.5}, {"sr": 3.0}, {"ln_ratio": 0.4}, {"sr": 2.5, "ln_ratio": 0.2}])
def test_steer_lands_on_the_toy_draft(prompt):
    st = K.steer(toy_draft(T=2000), K.goals(prompt), bare)
    assert all(r["hit"] for r in st.report()), st.report()
    assert abs(st.measured["sr"] - star_rating(st.beatmap)) < 1e-9


def test_steer_without_goals_is_the_chart_at_rest():
    d = toy_draft()
    st = K.steer(d, [], bare)
    assert st.knobs == K.Knobs() and st.trials == 1 and st.beatmap.notes == bare(K.render(d)).notes


def test_an_impossible_request_ends_with_the_closest_chart():
    d = toy_draft(T=300)
    st = K.steer(d, K.goals({"sr": 40}), bare)
    r = st.report()[0]
    assert not r["hit"] and r["miss"] > 0 and st.trials <= 24
    top = K.measure(bare(K.render(d, K.Knobs(density=K.KNOB_RANGE["density"][1]))))["sr"]
    assert st.measured["sr"] == pytest.approx(top)                              # the end of the range is the closest


# ---------------------------------------------------------------- generate() with the bundled model
@pytest.fixture(scope="module")
def song():
    from mug_nb.synth import synth_song
    return G.prepare_audio(synth_song(seed=321, duration=40.0).wave)


def test_generate_lands_the_star_rating_and_tags_it(song):
    for sr in (2.0, 4.5):
        bm = G.generate(song, {"sr": sr}, count=1, seed=2)[0]
        assert abs(star_rating(bm) - sr) <= 0.2
        assert bm.metadata["AIControl"].startswith(f"sr: asked {sr}, got ") and "(hit)" in bm.metadata["AIControl"]
        (r,) = G.control_report(bm)
        assert r["feature"] == "sr" and r["hit"] and abs(float(r["got"]) - star_rating(bm)) < 1e-3
        assert G.control_line(bm).startswith(f"asked sr {sr} · got ")


def test_generate_lands_long_notes_with_a_star_rating(song):
    bm = G.generate(song, {"sr": 3.5, "ln_ratio": 0.5}, count=1, seed=2)[0]
    assert abs(star_rating(bm) - 3.5) <= 0.2 and abs(ln_ratio(bm) - 0.5) <= 0.04


def test_tolerance_none_is_the_model_alone(song):
    plain = G.generate(song, {"sr": 6.0}, count=2, seed=4, tolerance=None)
    assert all("AIControl" not in bm.metadata for bm in plain)
    z = G.sample_latents(G.load_bundled(), song, {"sr": 6.0}, 2, *G.sampling_settings(G.load_bundled()), seed=4)
    raw = G.decode_notes(G.load_bundled(), z, song.duration_ms, song=song, prompt={"sr": 6.0})
    for bm, notes in zip(plain, raw):
        assert bm.notes == P.postprocess(notes)[0]


def test_generate_warns_when_the_song_cannot_carry_the_request(song):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bm = G.generate(song, {"sr": 8.0}, count=1, seed=2)[0]
    assert "(miss" in bm.metadata["AIControl"] and not G.control_report(bm)[0]["hit"]
    assert any("closest chart" in str(w.message) for w in caught)


def test_generate_rejects_a_bad_tolerance(song):
    with pytest.raises(G.GenerateError, match="tolerance"):
        G.generate(song, {"sr": 3}, count=1, tolerance=-1)


def test_a_full_prompt_steers_one_goal_per_knob():
    from collections import Counter
    from mug_nb.features import prompt_from_chart
    from mug_nb.osu import read_osu
    bm = read_osu(G.Path(__file__).resolve().parents[1] / "data_samples/songs/synth0011-house/synth0011-house [Hard].osu")
    gs = K.goals(prompt_from_chart(bm))
    assert len(gs) > 4 and max(Counter(g.knob for g in gs if g.tuned).values()) == 1
    assert [g.key for g in gs if g.tuned and g.knob == "density"] == ["sr"]
    st = K.steer(toy_draft(T=2000), gs, bare)
    assert len(st.report()) == len(gs) and st.trials <= 24
    assert all(r["hit"] for r in st.report() if r["steered"] and r["feature"] == "sr")



def test_steer_finishes_each_threshold_once_however_many_styles_it_tries(monkeypatch):
    d, calls, seen = toy_draft(T=2000), [], []
    def finish(notes): calls.append(1); return bare(notes)
    real = K.chart_at
    def spy(draft, knobs, fin, base=None): seen.append(knobs); return real(draft, knobs, fin, base)
    monkeypatch.setattr(K, "chart_at", spy)
    st = K.steer(d, K.goals({"sr": 3.0, "stream": True}), finish)
    styled = sum(1 for k in seen if k.style and k.strength > 0)
    thresholds = {(k.density, k.holds) for k in seen}
    assert styled >= 2 and len(seen) == st.trials
    assert len(calls) == len(thresholds) + styled < st.trials + styled     # fewer than one base per chart


@pytest.mark.parametrize("rows", [True, False])
def test_accent_keeps_accented_rows_when_thinning(rows):
    "Issue 16: below density 0 the accented frames' rows go last; at density 0 and above the accent changes nothing."
    d = toy_draft(rows=rows)
    acc = np.zeros(d.logits.shape[1], np.float32); acc[::3] = 1.0
    a = K.Draft(d.logits, d.row_logit, d.row_offset, accent=acc)
    for x in (0.0, 2.0): assert K.render(a, K.Knobs(density=x)) == K.render(d, K.Knobs(density=x))
    on = lambda notes: np.mean([round(n.time / C.FRAME_MS - 0.5) % 3 == 0 for n in notes])   # share on accented frames
    low = K.Knobs(density=-3.0)
    plain, kept = K.render(d, low), K.render(a, low)
    assert len(kept) > 1.5 * len(plain) > 0 and on(kept) > on(plain) + 0.2
    counts = [len(K.render(a, K.Knobs(density=x))) for x in (-12, -8, -4, -2, -1, 0)]
    assert counts == sorted(counts)                                 # the knob stays monotone


def test_harmonic_change_grid_weight_and_accents():
    t = np.arange(3 * C.SAMPLE_RATE) / C.SAMPLE_RATE
    chord = lambda fs: sum(np.sin(2 * np.pi * f * t) for f in fs)
    wave = (np.where(t < 1.5, chord([262, 330, 392]), chord([349, 440, 523])) * 0.2).astype(np.float32)
    change = K.harmonic_change(wave)
    peak_ms = (np.argmax(change[8:]) + 8) * K.CHANGE_HOP / C.SAMPLE_RATE * 1000
    assert abs(peak_ms - 1500) < 60                                 # C major → F major
    assert K.grid_weight([0, 250, 500, 125, 60], 120, 0).tolist() == [1, 1, 1, 0.5, 0]
    d = toy_draft(T=int(3000 / C.FRAME_MS))
    acc = K.accents(d, change)
    assert acc.shape == d.row_logit.shape and 0 <= acc.min() and acc.max() <= 1


def test_generate_makes_the_accents_only_when_a_chart_is_thinned(song, monkeypatch):
    made = []
    real = K.harmonic_change
    monkeypatch.setattr(K, "harmonic_change", lambda *a, **k: made.append(1) or real(*a, **k))
    monkeypatch.setattr(G, "harmonic_change", K.harmonic_change)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        G.generate(song, {"sr": 4.0}, count=2, seed=1, tolerance=None)
        assert not made                                                    # the model alone thins nothing
        G.generate(song, {"sr": 1.0}, count=2, seed=1)
    assert len(made) == 1                                                  # once per song, shared by the variants


def test_steer_pauses_the_cycle_collector_and_restores_it():
    import gc
    seen = []
    def finish(notes): seen.append(gc.isenabled()); return bare(notes)
    assert gc.isenabled()
    K.steer(toy_draft(), K.goals({"sr": 2.0}), finish)
    assert seen and not any(seen) and gc.isenabled()
    gc.disable()
    try: K.steer(toy_draft(), [], finish)
    finally: was = gc.isenabled(); gc.enable()
    assert not was                                   # a collector the caller paused stays paused
