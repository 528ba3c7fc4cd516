"""Tests of mug_nb.evaluate: one-to-one placement F1 on hand-made cases, column/LN F1, playability, files."""
import itertools
import json

import numpy as np
import pytest

from mug_nb.evaluate import (EvaluateError, Score, column_f1, diversity, evaluate_files, ln_head_f1, ln_tail_f1,
                             match_events, placement_f1, playability, pool, sr_bucket)
from mug_nb.osu import Note

REF = [Note(t, i % 4, None) for i, t in enumerate((1000, 1500, 2000, 2500, 3000))]


def shifted(notes, d):
    return [Note(n.time + d, n.column, None if n.end is None else n.end + d) for n in notes]


@pytest.mark.parametrize("tol", [20, 50])
def test_exact_match_is_perfect(tol):
    s = placement_f1(REF, REF, tol)
    assert s == 1.0 and s.tp == 5 and s.precision == 1.0 and s.recall == 1.0


@pytest.mark.parametrize("shift", [19, -19])
def test_shift_inside_20ms_window(shift):
    assert placement_f1(shifted(REF, shift), REF, tolerance_ms=20) == 1.0


@pytest.mark.parametrize("shift", [21, -21])
def test_shift_outside_20ms_window(shift):
    assert placement_f1(shifted(REF, shift), REF, tolerance_ms=20) == 0.0
    assert placement_f1(shifted(REF, shift), REF, tolerance_ms=50) == 1.0


def test_boundary_is_inclusive():
    assert placement_f1(shifted(REF, 20), REF, 20) == 1.0
    assert placement_f1(shifted(REF, 50), REF, 50) == 1.0 and placement_f1(shifted(REF, 51), REF, 50) == 0.0


def test_extra_notes_lower_precision_only():
    s = placement_f1(REF + [Note(4000, 0, None), Note(4500, 1, None)], REF, 20)
    assert s.tp == 5 and s.n_gen == 7 and s.precision == pytest.approx(5 / 7) and s.recall == 1.0
    assert s == pytest.approx(2 * (5 / 7) / (1 + 5 / 7))


def test_missing_notes_lower_recall_only():
    s = placement_f1(REF[:2], REF, 20)
    assert s.precision == 1.0 and s.recall == pytest.approx(0.4) and s == pytest.approx(2 * 0.4 / 1.4)


def test_one_to_one_two_references_in_one_window():
    s = placement_f1([Note(1000, 0, None)], [Note(990, 0, None), Note(1010, 1, None)], 20)
    assert s.tp == 1 and s.recall == 0.5 and s.precision == 1.0


def test_one_to_one_two_estimates_in_one_window():
    s = placement_f1([Note(995, 0, None), Note(1005, 1, None)], [Note(1000, 0, None)], 20)
    assert s.tp == 1 and s.precision == 0.5


def test_matching_is_maximum_not_greedy_nearest():
    # nearest-neighbour greedy would pair 1015 with ref 1000 and leave ref 1030 alone; the maximum pairs both
    mi, mj = match_events([1000, 1030], [985, 1015], 20)
    assert len(mi) == 2


def test_match_events_against_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(150):
        ref = sorted(rng.integers(0, 150, rng.integers(0, 5)))
        est = sorted(rng.integers(0, 150, rng.integers(0, 5)))
        best = 0
        for k in range(min(len(ref), len(est)), 0, -1):
            if any(all(abs(ref[a] - est[b]) <= 25 for a, b in zip(rs, es))
                   for rs in itertools.combinations(range(len(ref)), k)
                   for es in itertools.permutations(range(len(est)), k)):
                best = k
                break
        assert len(match_events(ref, est, 25)[0]) == best


def test_chords_count_once_for_placement():
    gen = [Note(1000, c, None) for c in range(4)]
    assert placement_f1(gen, [Note(1000, 2, None)], 20) == 1.0


def test_micro_and_per_chart_averages():
    micro = placement_f1([REF, REF[:1]], [REF, REF], 20, average="micro")
    chart = placement_f1([REF, REF[:1]], [REF, REF], 20, average="chart")
    assert micro.tp == 6 and micro == pytest.approx(2 * 1 * 0.6 / 1.6)
    assert chart == pytest.approx((1 + 2 * (1 / 5) / (1 + 1 / 5)) / 2)
    with pytest.raises(EvaluateError):
        placement_f1([REF], [REF, REF])
    with pytest.raises(EvaluateError):
        pool([Score(1, 1, 1)], average="macro")


def test_onset_arrays_are_accepted():
    assert placement_f1(np.array([1000.0, 1500.0, 2000.0, 2500.0, 3000.0]) + 10, REF, 20) == 1.0


def test_empty_charts():
    assert placement_f1([], [], 20) == 1.0
    assert placement_f1([], REF, 20) == 0.0 and placement_f1(REF, [], 20) == 0.0


def test_column_aware_and_ln_f1():
    ref = [Note(1000, 0, None), Note(1500, 1, 2000), Note(2500, 2, None)]
    gen = [Note(1010, 0, None), Note(1500, 3, 2000), Note(2500, 2, 2900)]
    assert placement_f1(gen, ref, 20) == 1.0
    assert column_f1(gen, ref, 20).tp == 2
    assert ln_head_f1(gen, ref, 20).tp == 0 and ln_head_f1(ref, ref, 20) == 1.0
    tails = ln_tail_f1(shifted(ref, 30), ref, 20)
    assert tails.tp == 0 and ln_tail_f1(shifted(ref, 30), ref, 50) == 1.0


def test_playability():
    notes = [Note(0, 0, None), Note(60, 0, None), Note(60, 1, None), Note(500, 2, 900), Note(700, 3, None)]
    p = playability(notes, key_count=4)
    assert p["minijacks"] == 1 and p["chord_sizes"] == {1: 3, 2: 1} and p["max_chord"] == 2
    assert p["column_share"] == [0.4, 0.2, 0.2, 0.2] and p["ln_ratio"] == pytest.approx(0.2)
    even = playability([Note(i * 100, i % 4, None) for i in range(40)], key_count=4)
    assert even["minijacks"] == 0 and even["column_balance"] == pytest.approx(1.0)
    one = playability([Note(i * 100, 0, None) for i in range(10)], key_count=4)
    assert one["column_balance"] == pytest.approx(0.0) and one["minijacks"] == 0
    assert playability([Note(i * 80, 0, None) for i in range(10)], key_count=4)["minijacks"] == 9


def test_diversity():
    a = [Note(t, t // 100 % 4, None) for t in range(0, 2000, 100)]
    b = [Note(t, (t // 100 + 1) % 4, None) for t in range(0, 2000, 100)]
    assert diversity([a, a]) == 0.0 and diversity([a, b]) == 1.0 and diversity([a]) == 0.0


def test_sr_bucket():
    assert [sr_bucket(x) for x in (1.0, 2.5, 3.0, 4.5, 6.0, 7.0)] == ["easy", "normal", "hard", "insane", "expert",
                                                                      "expert+"]


def test_evaluate_files_on_a_peer_chart(tmp_path, peer_data):
    ref = peer_data / "maps/gosu/cYsmix - triangles (MuangMuangE) [Easy].osu"
    res = evaluate_files(ref, ref)
    assert res["placement_f1_20ms"]["f1"] == 1.0 and res["column_f1_50ms"]["f1"] == 1.0
    assert res["playability"][0]["n_notes"] == 155 and res["ln_ratio"]["abs_error"] == 0
    json.dumps(res)
    with pytest.raises(EvaluateError):
        evaluate_files(tmp_path / "missing.osu", ref)


def test_evaluate_files_shifted_copy(tmp_path, peer_data):
    from mug_nb.osu import read_osu, write_osu
    ref_path = peer_data / "maps/gosu/cYsmix - triangles (MuangMuangE) [Easy].osu"
    bm = read_osu(ref_path)
    bm.notes = shifted(bm.notes, 30)
    write_osu(bm, tmp_path / "gen.osu")
    res = evaluate_files(tmp_path / "gen.osu", ref_path)
    assert res["placement_f1_20ms"]["f1"] == 0.0 and res["placement_f1_50ms"]["f1"] == 1.0


def test_star_rating_in_evaluate_files(peer_data):
    ref = peer_data / "maps/gosu/cYsmix - triangles (MuangMuangE) [Easy].osu"
    res = evaluate_files(ref, ref)
    assert res["star_rating"]["abs_error"] < 1e-9 and res["star_rating"]["reference"] > 0.5


def test_control_accuracy_on_a_synthetic_chart():
    from mug_nb.evaluate import control_accuracy
    from mug_nb.features import prompt_from_chart
    from mug_nb.synth import chart_for_song, synth_song
    bm = chart_for_song(synth_song(3, duration=20), "Hard")
    own = control_accuracy(bm, prompt_from_chart(bm))
    assert own["sr"] < 1e-9 and own["ln_ratio"] < 1e-9 and all(v in (0.0, 1.0) for v in own.values())
    acc = control_accuracy(bm, {"sr": own["sr"] + 10, "ln_ratio": 1.0, "ln": True})
    assert acc["sr"] > 5 and acc["ln_ratio"] > 0.5 and acc["ln"] == 0.0
