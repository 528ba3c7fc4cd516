"""Tests of `mug_nb.chart`: the time grid, the note array and both decoders (peer checks skip when absent)."""
import csv

import numpy as np
import pytest

from mug_nb import chart
from mug_nb.chart import (FRAME_MS, NOTE_FRAMES, ambiguous_cases, array_to_notes, chart_to_array, notes_to_array,
                          roundtrip_report)
from mug_nb.osu import Note, read_osu


def test_constants():
    assert (chart.SAMPLE_RATE, chart.HOP_LENGTH, chart.N_MELS, chart.MEL_PER_NOTE_FRAME) == (22050, 128, 128, 8)
    assert (chart.NOTE_FRAMES, chart.MEL_FRAMES, chart.LATENT_DOWNSAMPLE) == (4096, 32768, 8)
    assert FRAME_MS == 128 / 22050 * 8 * 1000 and abs(FRAME_MS - 46.43990929705215) < 1e-12


# ------------------------------------------------------------ a reference encoder/decoder, written as loops
# straight from the description of the original (mug_reference.md §1.3-1.4), to check the vectorised code.

def loop_encode(notes, K, T):
    arr = np.zeros((T, 4 * K), np.float32)
    max_index = 0
    for n in notes:
        t = float(int(n.time))
        s = int(t / FRAME_MS)
        if s >= T or s < 0:
            continue
        arr[s, n.column] = 1
        arr[s, K + n.column] = (t - s * FRAME_MS) / FRAME_MS
        max_index = max(max_index, s)
        if n.end is not None:
            te = float(int(n.end))
            e = int(te / FRAME_MS)
            off = (te - e * FRAME_MS) / FRAME_MS
            if e >= T:
                e, off = T - 1, 1
            arr[s + 1:e + 1, 2 * K + n.column] = 1
            arr[e, 3 * K + n.column] = off
            max_index = max(max_index, e)
    valid = np.zeros(T, bool)
    valid[:max_index] = True
    return arr.T, valid


def loop_decode_original(a, K, logits=False):
    pos = (lambda v: v > 0) if logits else (lambda v: v > 0.5)
    out = []
    T = a.shape[1]
    for c in range(K):
        for s in range(T):
            if not pos(a[c, s]):
                continue
            start = round((s + np.clip(a[K + c, s], 0, 1)) * FRAME_MS)
            end_index = s
            if s != T - 1:
                i = s + 1
                while i < T and pos(a[2 * K + c, i]) and not pos(a[c, i]):
                    i += 1
                end_index = i - 1
            if end_index == s:
                out.append(Note(int(start), c))
            else:
                out.append(Note(int(start), c, int(round((end_index + np.clip(a[3 * K + c, end_index], 0, 1)) * FRAME_MS))))
    return sorted(out, key=lambda n: n.time)


def random_notes(rng, K, n, T):
    notes = []
    for _ in range(n):
        t = int(rng.integers(-100, int(T * FRAME_MS) + 500))
        end = None if rng.random() < 0.6 else t + int(rng.integers(0, 800))
        notes.append(Note(t, int(rng.integers(0, K)), end))
    return sorted(notes, key=lambda x: x.time)


@pytest.mark.parametrize("K", [1, 4, 7])
def test_encoder_matches_loop_reference(K):
    rng = np.random.default_rng(K)
    for _ in range(20):
        notes = random_notes(rng, K, 60, 64)
        a, v = notes_to_array(notes, K, 64)
        b, w = loop_encode(notes, K, 64)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(v, w)


@pytest.mark.parametrize("logits", [False, True])
def test_original_decoder_matches_loop_reference(logits):
    rng = np.random.default_rng(1)
    for _ in range(20):
        notes = random_notes(rng, 4, 40, 64)
        a, _ = notes_to_array(notes, 4, 64)
        if logits:  # turn flags into logits and disturb the offsets like a model would
            a = a.copy()
            flags = np.r_[0:4, 8:12]
            a[flags] = np.where(a[flags] > 0.5, 3.0, -3.0) + rng.normal(0, 1, a[flags].shape)
            a[4:8] += rng.normal(0, 0.3, a[4:8].shape)
            a[12:16] += rng.normal(0, 0.3, a[12:16].shape)
        assert array_to_notes(a, 4, logits, decoder="original") == loop_decode_original(a, 4, logits)
    noise = rng.normal(0, 1, (16, 200)).astype(np.float32)
    assert array_to_notes(noise, 4, True, decoder="original") == loop_decode_original(noise, 4, True)


def test_shapes_and_chart_to_array(samples):
    bm = read_osu(samples / "charts" / "practice_holds.osu")
    a, v = chart_to_array(bm)
    assert a.shape == (16, NOTE_FRAMES) and a.dtype == np.float32 and v.shape == (NOTE_FRAMES,) and v.dtype == bool
    assert a[0:4].sum() == bm.n_notes  # every head has its own frame in this chart
    last = max(n.end or n.time for n in bm.notes)
    assert v.sum() == int(last / FRAME_MS)
    a7, _ = notes_to_array([Note(0, 6)], 7, n_frames=10)
    assert a7.shape == (28, 10) and a7[6, 0] == 1


def test_rate_and_clamping():
    a, v = notes_to_array([Note(1000, 0, 5000)], 4, n_frames=64, rate=2.0)
    assert a[0, int(500 / FRAME_MS)] == 1 and a.shape == (16, 64)
    a, v = notes_to_array([Note(100, 1, 10_000)], 4, n_frames=32)   # tail past the end
    assert a[9, 31] == 1 and a[13, 31] == 1.0 and v.sum() == 31
    a, v = notes_to_array([Note(-50, 1), Note(10_000, 2)], 4, n_frames=32)  # before / after the array
    assert a.sum() == 0 and not v.any()


def test_improved_decoder_recovers_hard_cases():
    short = [Note(100, 0, 120)]                      # hold inside one frame
    meet = [Note(0, 1, 1000), Note(1010, 1)]         # tail in the next head's frame
    both = short + meet
    a, _ = notes_to_array(both, 4, 64)
    assert array_to_notes(a, 4) == sorted(both, key=lambda n: n.time)
    orig = array_to_notes(a, 4, decoder="original")
    assert Note(100, 0) in orig and Note(0, 1, round(20 * FRAME_MS)) in orig
    amb = ambiguous_cases(both, 4, 64)
    assert amb["short_hold"] == 1 and amb["tail_meets_next_head"] == 1 and amb["shared_start_frame"] == 0
    with pytest.raises(ValueError):
        array_to_notes(a, 4, decoder="magic")
    with pytest.raises(ValueError):
        array_to_notes(a, 7)


def test_shared_frame_loses_a_note():
    a, _ = notes_to_array([Note(1000, 0), Note(1015, 0)], 4, 32)
    assert array_to_notes(a, 4) == [Note(1015, 0)]
    assert ambiguous_cases([Note(1000, 0), Note(1015, 0)], 4, 32)["shared_start_frame"] == 2


def test_samples_roundtrip_whole(samples):
    for p in sorted((samples / "charts").glob("*.osu")):
        bm = read_osu(p)
        rep = roundtrip_report(bm.notes, bm.key_count)
        assert rep["whole"] == rep["unique"] == bm.n_notes, p.name


def test_peer_4k_roundtrip(peer_data):
    rows = [r for r in csv.DictReader(open(peer_data / "reference/maps.csv", encoding="utf-8"))
            if r["category"] == "real_chart" and r["keys"] == "4"]
    assert len(rows) >= 30
    tot = {d: np.zeros(3, np.int64) for d in ("original", "improved")}
    for r in rows:
        bm = read_osu(peer_data / r["file"])
        for d in tot:
            rep = roundtrip_report(bm.notes, 4, d)            # the original's 4096-frame window
            tot[d] += [rep["unique"], rep["start_ok"], rep["whole"]]
            assert rep["start_ok"] == rep["unique"], (r["file"], d)
        n = int(bm.last_ms / FRAME_MS) + 2                     # the whole chart
        rep = roundtrip_report(bm.notes, 4, "improved", n)
        assert rep["whole"] == rep["start_ok"] == rep["unique"], r["file"]
    u, _, w = tot["improved"]
    assert w / u >= 0.98865 and w >= tot["original"][2]
    assert w / u > 0.999
