"""Tests of mug_nb.features: star rating, LN ratio, skillsets, prompt vocabulary, chart -> prompt, feature store."""
import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from mug_nb.features import (CALIBRATION, FAST_S, _estimate, note_rows, pattern_table, vibro_presence,
                             COMPAT_VOCAB, DEFAULT_VOCAB, VOCABULARIES, vocabulary, PATTERNS, SKILLSETS, FeatureError, FeatureStore, Vocabulary,
                             _chart, asset_path, compute_features, file_hash, ln_ratio, map_type, pattern_flags,
                             prompt_from_chart, prompt_to_ids, skillsets, star_rating, summary, type_flags)
from mug_nb.osu import read_osu

EMPTY = [0, 36, 40, 51, 54, 57, 60, 91, 122, 125, 156, 159, 190, 193, 224, 227, 258, 261, 292, 295, 326]
GOLDEN = [  # the first three prompts of tests/compat (meta "prompts"; ids checked in test_golden_prompt_ids)
    ({}, EMPTY),
    ({"sr": 3.5, "ln_ratio": 0.2, "rank_status": "ranked", "rc": 1, "ett": 20, "technical": True, "technical_ett": 24,
      "handstream": False, "jumpstream_ett": 16.5},
     [13, 37, 43, 53, 54, 57, 76, 91, 122, 125, 156, 171, 190, 193, 225, 227, 258, 261, 292, 315, 328]),
    ({"sr": 8, "ln_ratio": 1, "ett": 35, "rank_status": "graveyard", "ln": 1, "stamina": True},
     [36, 39, 51, 51, 54, 59, 91, 91, 124, 125, 156, 159, 190, 193, 224, 227, 258, 261, 292, 295, 326]),
]


def stream_chart(seconds=60, nps=8.0, seed=0):
    rng = np.random.default_rng(seed); notes, prev = [], -1
    for i in range(int(seconds * nps)):
        c = int((prev + rng.integers(1, 4)) % 4); notes.append((round(i * 1000 / nps), c)); prev = c
        if i % 8 == 0: notes.append((round(i * 1000 / nps), (c + 2) % 4))
    return _chart(notes)


def chordjack_chart(seconds=60, rps=4.0, seed=1):
    rng = np.random.default_rng(seed); notes = []
    for i in range(int(seconds * rps)):
        notes += [(round(i * 1000 / rps), int(c)) for c in rng.choice(4, size=rng.choice([3, 3, 4]), replace=False)]
    return _chart(notes)


# ---------------------------------------------------------------- vocabulary
@pytest.mark.parametrize("prompt,ids", GOLDEN, ids=["empty", "typical", "max-collision"])
def test_compat_golden_prompts(prompt, ids):
    out = prompt_to_ids(prompt, COMPAT_VOCAB)
    assert out.dtype == np.int64 and out.shape == (21,) and out.tolist() == ids


def test_compat_layout_and_collision():
    assert COMPAT_VOCAB.size == 329 and len(COMPAT_VOCAB) == 21
    assert COMPAT_VOCAB.bases.tolist() == EMPTY
    maxed = prompt_to_ids(GOLDEN[2][0], COMPAT_VOCAB)
    assert maxed[0] == EMPTY[1] and maxed[2] == EMPTY[3] and maxed[6] == EMPTY[7]
    assert prompt_to_ids({"technical_ett": 35}, COMPAT_VOCAB)[19] == 326  # == technical missing
    assert prompt_to_ids({"sr": 1.2}, COMPAT_VOCAB)[0] == 1                # float truncation kept


def test_golden_prompt_ids(compat):
    "The ids the original's feature_dict_to_embedding_ids gave for the fixture's prompts (tests/compat)."
    prompts, want = compat.meta["prompts"], compat.golden["prompt_ids"].numpy()
    assert [p for p, _ in GOLDEN] == prompts[:3] and len(prompts) == len(want) == 4
    got = np.stack([prompt_to_ids(p, COMPAT_VOCAB) for p in prompts])
    assert (got == want).all()


def test_shipped_yaml_matches_table(compat):
    "The shipped vocabulary is byte for byte the original's configs/mug/mania_beatmap_features.yaml (its sha256)."
    import hashlib
    assert hashlib.sha256(asset_path().read_bytes()).hexdigest() == compat.meta["features_yaml_sha256"]
    assert Vocabulary.from_yaml(asset_path()).features == COMPAT_VOCAB.features


def test_default_vocab_fixes():
    assert len(DEFAULT_VOCAB) == 21 and DEFAULT_VOCAB.size == 42 + 4 + 12 + 3 * 3 + 37 * 8 + 3 * 7 == 384
    assert DEFAULT_VOCAB.names == COMPAT_VOCAB.names
    assert prompt_to_ids({}, DEFAULT_VOCAB).tolist() == DEFAULT_VOCAB.bases.tolist()
    top = {f.name: (f.max if f.kind == "numeric" else (f.values[-1] if f.kind == "category" else 1))
           for f in DEFAULT_VOCAB.features}
    ids = prompt_to_ids(top, DEFAULT_VOCAB)
    assert len(set(ids.tolist())) == 21 and (ids < DEFAULT_VOCAB.bases + np.array(DEFAULT_VOCAB.slots)).all()
    assert ids.max() == DEFAULT_VOCAB.size - 1
    assert prompt_to_ids({"sr": 1.2}, DEFAULT_VOCAB)[0] == 7 and prompt_to_ids({"ln_ratio": 0.3}, DEFAULT_VOCAB)[2] == 42 + 4 + 4
    assert prompt_to_ids({"rank_status": "approved"}, DEFAULT_VOCAB)[1] == prompt_to_ids({"rank_status": "ranked"}, DEFAULT_VOCAB)[1]


def test_default_vocab_tells_easy_charts_apart():
    "The original's floors (sr 1, MSD 5) put every easy chart in one bucket; the default vocabulary starts at 0."
    easy, normal = dict(sr=0.6, ett=1.7, stream_ett=1.6), dict(sr=0.9, ett=2.4, stream_ett=2.4)
    for v in (COMPAT_VOCAB, VOCABULARIES["default_v1"]):
        assert (prompt_to_ids(easy, v, clip=True) == prompt_to_ids(normal, v, clip=True)).all()
    assert (prompt_to_ids(easy, DEFAULT_VOCAB) != prompt_to_ids(normal, DEFAULT_VOCAB)).sum() == 3
    with pytest.raises(FeatureError, match="outside"):
        prompt_to_ids({"sr": 0.5}, VOCABULARIES["default_v1"])
    assert VOCABULARIES["default_v1"].size == 339 and vocabulary("default") is DEFAULT_VOCAB
    with pytest.raises(FeatureError, match="unknown prompt vocabulary"):
        vocabulary("nope")


def test_prompt_errors_name_valid_values():
    with pytest.raises(FeatureError, match="valid names"):
        prompt_to_ids({"stars": 3})
    with pytest.raises(FeatureError, match=r"\[1(\.0)?, 8(\.0)?\]"):
        prompt_to_ids({"sr": 9.5}, COMPAT_VOCAB)
    with pytest.raises(FeatureError, match="ranked"):
        prompt_to_ids({"rank_status": "approved"}, COMPAT_VOCAB)
    with pytest.raises(FeatureError, match="bool"):
        prompt_to_ids({"stream": 2})
    with pytest.raises(FeatureError, match="number"):
        prompt_to_ids({"ett": "hard"})
    with pytest.raises(FeatureError):
        prompt_to_ids({"ett": float("nan")})
    assert prompt_to_ids({"sr": 9.5}, COMPAT_VOCAB, clip=True)[0] == 36
    assert prompt_to_ids({"stream": -1}, COMPAT_VOCAB)[10] == 156  # DB sentinel = missing


# ---------------------------------------------------------------- LN ratio / type
def test_ln_ratio_and_types():
    bm = _chart([(i * 100, i % 4, i * 100 + 50) if i < 3 else (i * 100, i % 4) for i in range(10)])
    assert ln_ratio(bm) == pytest.approx(0.3) and map_type(bm) == "hybrid"
    assert map_type(0.0999) == "rice" and map_type(0.1) == "hybrid" and map_type(0.4) == "hybrid" and map_type(0.41) == "ln"
    assert type_flags(0.5, "dataset") == {"rc": 0, "hb": 1, "ln": 1}
    assert type_flags(0.75, "dataset") == {"rc": 0, "hb": 0, "ln": 1}
    with pytest.raises(FeatureError, match="no notes"):
        ln_ratio(_chart([]))


# ---------------------------------------------------------------- star rating
def test_star_rating_rates():
    bm = stream_chart(30)
    nm = star_rating(bm)
    assert star_rating(bm, 1.5) > nm > star_rating(bm, 0.75) > 0
    with pytest.raises(FeatureError):
        star_rating(bm, 0)


def test_star_rating_asserted_by_test_suites(peer_data):
    data = json.loads((peer_data / "reference" / "test_asserted_sr.json").read_text())
    checked = 0
    for e in data["entries"]:
        path = peer_data / e["file"]
        if not path.is_file() or e["algorithm"].startswith("osu!mania SR of the 2022") or e["mods"] not in ("NM", "DT"):
            continue  # the 2022-algorithm values (osu-mania-stable) need rosu-pp 1.x
        rate = 1.5 if e["mods"] == "DT" else 1.0
        assert star_rating(read_osu(path), rate) == pytest.approx(e["expected_sr"], abs=1e-12), e["file"]
        checked += 1
    assert checked == 4


def test_star_rating_maps_csv(peer_data):
    n = 0
    for r in csv.DictReader(open(peer_data / "reference" / "maps.csv")):
        bm = read_osu(peer_data / r["file"])
        for col, rate in (("rosu_sr_nm", 1.0), ("rosu_sr_dt", 1.5), ("rosu_sr_ht", 0.75)):
            if r[col]:
                assert star_rating(bm, rate) == pytest.approx(float(r[col]), abs=1e-9), (r["file"], col)
                n += 1
    assert n > 300


# ---------------------------------------------------------------- skillsets
def test_skillsets_patterns():
    s, c = skillsets(stream_chart()), skillsets(chordjack_chart())
    assert set(s) == set(SKILLSETS)
    assert max(PATTERNS, key=c.get) == "chordjack" and c["chordjack"] > s["chordjack"]
    assert s["stream"] > c["stream"] and s["handstream"] < c["handstream"]
    for ss in (s, c):
        assert ss["overall"] == max(ss[k] for k in PATTERNS) and 0 < ss["stamina"] <= ss["overall"]
    assert skillsets(stream_chart(nps=12))["overall"] > s["overall"]
    assert skillsets(stream_chart(), rate=1.2)["overall"] > s["overall"]


def test_skillsets_window_and_cap():
    bm = stream_chart(60)
    head = skillsets(bm, until_ms=20_000)
    assert head == skillsets(_chart([(n.time, n.column) for n in bm.notes if n.time < 20_000]))
    assert skillsets(bm, until_ms=0) == {k: 0.0 for k in SKILLSETS}
    assert max(skillsets(stream_chart(20, nps=60)).values()) == 40.0  # MinaCalc 434's cap


def test_skillsets_edge_cases():
    zero = {k: 0.0 for k in SKILLSETS}
    assert skillsets(_chart([])) == zero and skillsets(_chart([(500, 2)])) == zero
    assert skillsets(_chart([(500, 2), (500, 3)])) == zero  # one row
    two = skillsets(_chart([(0, 0), (0, 1), (20000, 3)]))
    assert all(np.isfinite(v) and v >= 0 for v in two.values())
    for keys in (1, 3, 7):
        with pytest.raises(FeatureError, match="4K"):
            skillsets(_chart([(0, 0), (100, 0)], keys=keys))
    with pytest.raises(FeatureError, match="minacalc"):
        if __import__("importlib").util.find_spec("minacalc"): raise FeatureError("minacalc present")
        skillsets(stream_chart(5), backend="minacalc")
    with pytest.raises(FeatureError):
        skillsets(stream_chart(5), backend="nope")


def test_skillsets_five_minute_chart_is_finite():
    out = skillsets(stream_chart(300, nps=12))  # speed is measured by benchmarks/bench_features.py
    assert set(out) == set(SKILLSETS) and all(np.isfinite(v) and 0 < v <= 40 for v in out.values())


def _spearman(a, b):
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return np.corrcoef(ra, rb)[0, 1]


def test_skillsets_against_minacalc(peer_data):
    rows = [r for r in csv.DictReader(open(peer_data / "reference" / "minacalc_calibration.csv"))
            if float(r["mina434_overall"]) > 0]  # v434 returns zeros for charts > ~750 s
    ours = [skillsets(read_osu(peer_data / r["file"])) for r in rows]
    for k in SKILLSETS:
        a = np.array([o[k] for o in ours]); b = np.array([float(r[f"mina434_{k}"]) for r in rows])
        assert _spearman(a, b) >= 0.7, k
        if k == "overall":
            assert _spearman(a, b) >= 0.95 and np.abs(a - b).mean() <= 1.0


# ---------------------------------------------------------------- jacks and vibro (issue 19)
DENSE = ("stream", "jumpstream", "handstream", "technical")
VIBRO_CHARTS = ("hydrangea.osu", "namida.osu", "Chip Skylark - Shiny Teeth (Of Mass M Remix) (Swan) [Vibro Teeth].osu")


def rolled(period=80, step=20, cols=(0, 1, 2, 3), seconds=30):
    "Each column of `cols` every `period` ms, each `step` ms after the one before (step 0: chords)."
    return _chart([(1000 + k * period + i * step, c) for k in range(seconds * 1000 // period) for i, c in enumerate(cols)])


@pytest.mark.parametrize("period,step,cols", [
    (80, 20, (0, 1, 2, 3)), (75, 19, (0, 1, 2, 3)), (100, 25, (3, 2, 1, 0)),   # vibro: rolled over four columns
    (80, 20, (0, 1)),                                                          # one hand trilling at vibro speed
    (80, 0, (0, 1, 2, 3)), (80, 0, (1, 2))])                                   # quadjack, jumpjack at 12.5 per second
def test_vibro_and_fast_jacks_are_rated_by_jackspeed(period, step, cols):
    s = skillsets(rolled(period, step, cols))
    assert max(PATTERNS, key=s.get) == "jackspeed" and s["overall"] == s["jackspeed"] < 40
    for k in DENSE + ("chordjack", "stamina"):
        assert s[k] < 0.7 * s["jackspeed"], k
        assert s[k] == pytest.approx(CALIBRATION["jack_bound"] * s["jackspeed"], rel=0.1), k   # the ceiling binds


def test_fast_repeat_share():
    lo, hi = FAST_S
    for gap, weight in ((lo - 0.01, 1.0), ((lo + hi) / 2, 0.5), (hi + 0.01, 0.0)):
        tab = pattern_table(*note_rows(_chart([(0, 2), (round(gap * 1000), 2)])))
        assert tab["fast"][0] == pytest.approx(weight / 2, abs=0.02)               # 2 notes, the second repeats
    vib, st = pattern_table(*note_rows(rolled())), pattern_table(*note_rows(stream_chart()))
    assert vibro_presence(vib)[2:-2].min() == 1 and vibro_presence(st).max() == 0
    assert vib["jack"].max() == 0                       # no row repeats the row before: the old jack share missed it


def test_jack_ceiling_leaves_ordinary_charts_alone():
    off = {**CALIBRATION, "jack_bound": float("inf")}
    for bm in (stream_chart(), stream_chart(nps=12), chordjack_chart(), chordjack_chart(rps=6)):
        rows = note_rows(bm)
        assert _estimate(*rows) == _estimate(*rows, off)


def test_vibro_section_in_a_stream_chart():
    base = stream_chart(30)
    both = _chart([(n.time, n.column) for n in base.notes] + [(31000 + k * 80 + i * 20, i) for k in range(125) for i in range(4)])
    s0, s = skillsets(base), skillsets(both)
    assert max(PATTERNS, key=s0.get) in ("stream", "technical")               # the stream alone is a stream chart
    assert s["overall"] == s["jackspeed"] and max(s[k] for k in DENSE + ("chordjack",)) < 0.7 * s["jackspeed"]
    assert s["stream"] > s0["stream"]                                          # the vibro still counts, under its ceiling


@pytest.mark.parametrize("rate", [0.9, 1.0, 1.1])                # the rates of the training augmentation
@pytest.mark.parametrize("name", VIBRO_CHARTS)
def test_peer_vibro_charts_are_rated_by_their_jacks(peer_data, name, rate):
    s = skillsets(read_osu(peer_data / "maps" / "ManiaStarReducer" / name), rate)
    lead = max(s["jackspeed"], s["chordjack"])
    assert all(s[k] < lead for k in DENSE) and s["stamina"] < lead
    assert s["overall"] == lead and max(s.values()) < 40


# ---------------------------------------------------------------- chart -> prompt, store, summary
def test_pattern_flags_rule():
    ss = dict(stream=20, jumpstream=19.0, handstream=18.99, jackspeed=10, chordjack=10, technical=19.5, stamina=18.5)
    f = pattern_flags(ss)
    assert f == dict(stream=True, jumpstream=True, handstream=False, jackspeed=False, chordjack=False,
                     technical=True, stamina=False)
    # stamina is compared with the max of the six patterns (not with itself): above it counts as "more"
    assert pattern_flags({**ss, "stamina": 25})["stamina"] is True


def test_prompt_from_chart():
    bm = chordjack_chart(30)
    p = prompt_from_chart(bm)
    assert p["rc"] == 1 and "hb" not in p and "ln" not in p and p["ln_ratio"] == 0
    assert p["chordjack"] is True and p["ett"] == pytest.approx(skillsets(bm)["overall"])
    assert p["sr"] == pytest.approx(star_rating(bm))
    ids = prompt_to_ids(p, COMPAT_VOCAB, clip=True)
    assert ids[1] == 36 and ids[3] == 53  # rank_status missing, rc = True
    with pytest.raises(FeatureError):
        prompt_from_chart(_chart([]))


def test_feature_store_roundtrip(tmp_path):
    bm = stream_chart(20)
    h = file_hash(b"abc")
    assert h == "a9993e364706816aba3e25717850c26c9cd0d89d"
    with FeatureStore(tmp_path / "f.sqlite") as st:
        assert h not in st and st.get(h) is None
        f = compute_features(bm)
        st.put(h, f)
        assert h in st and st.get(h) == f and len(st) == 1 and st.keys() == [h]
    with FeatureStore(tmp_path / "f.sqlite") as st:  # persisted
        assert st.get(h) == f
        assert st.get_or_compute(h, bm) == f
    assert {"sr", "ln_ratio", "rc", "hb", "ln", "ett", "stream_ett", "stream", "stamina"} <= set(f)
    assert json.loads(json.dumps(f)) == f


def test_summary():
    s = summary(stream_chart(20))
    assert set(s) >= {"star_rating", "ln_ratio", "map_type", "skillsets", "prompt"}
    s7 = summary(_chart([(0, 0), (100, 6)], keys=7))
    assert s7["skillsets"] is None and "4K" in s7["note"] and s7["star_rating"] > 0


def test_floor_one_does_not_import_torch():
    code = "import sys, mug_nb.features; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
