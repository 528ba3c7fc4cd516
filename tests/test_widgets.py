"""The generation studio: control ↔ prompt mapping, one generation round trip without a browser, the invert tab."""
import os
import warnings

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
import mug_nb.widgets as Wg  # noqa: E402  (our own modules: a broken import fails, never skips)
import mug_nb.generate as G  # noqa: E402
from mug_nb import postprocess as P  # noqa: E402
from mug_nb import export as E  # noqa: E402


def test_defaults_give_the_original_default_prompt():
    assert Wg.prompt_from_controls(Wg.default_controls()) == {"rank_status": "ranked", "sr": 4.0}


def test_every_control_maps_to_its_feature():
    c = Wg.default_controls()
    c.update(style="loved", msd_on=True, msd=22.0, type_on=True, map_type="Long Note (LN > 40%)",
             ln_ratio_on=True, ln_ratio=0.6)
    for i, p in enumerate(Wg.PATTERN_CONTROLS):
        c.update({f"{p}_on": True, p: "more" if i % 2 else "less", f"{p}_msd_on": True, f"{p}_msd": 10.0 + i})
    prompt = Wg.prompt_from_controls(c)
    assert prompt["rank_status"] == "loved" and prompt["ett"] == 22.0 and prompt["ln"] is True
    assert "rc" not in prompt and "hb" not in prompt and prompt["ln_ratio"] == 0.6
    for i, p in enumerate(Wg.PATTERN_CONTROLS):
        assert prompt[p] is bool(i % 2) and prompt[f"{p}_ett"] == 10.0 + i
    # every produced key is a valid prompt for the package vocabulary
    from mug_nb.features import prompt_to_ids
    assert prompt_to_ids(prompt).shape == (21,)
    # and the inverse mapping round-trips
    assert Wg.prompt_from_controls(Wg.controls_from_prompt(prompt)) == prompt


def test_controls_from_prompt_clips_and_switches_off_absent():
    c = Wg.controls_from_prompt({"sr": 11.0, "stream": 1, "hb": 1})
    assert c["sr_on"] and c["sr"] == 8.0 and c["stream_on"] and c["stream"] == "more"
    assert c["type_on"] and c["map_type"].startswith("Hybrid") and not c["style_on"] and not c["msd_on"]


@pytest.fixture(scope="module")
def model():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return G.load_bundled()


def test_studio_generate_round_trip(model, tmp_path):
    song = Wg.synthetic_song(seed=1, duration=10.0)
    ui, st = Wg.studio(song=song, model=model, out_dir=str(tmp_path))
    assert set(Wg.default_controls()) <= set(st["ctl"])          # every control exists as a widget
    Wg.write_controls(st["ctl"], {"steps": 4, "count": 2, "seed": 5, "sr": 2.5, "snap": 4})
    assert Wg.read_controls(st["ctl"])["sr"] == 2.5
    st["generate"]()
    assert st["error"] is None, st["error"]
    assert len(st["variants"]) == 2 and len(st["gallery"].children) == 2
    assert st["progress"].value == st["progress"].max == G.n_steps(4)
    assert "seed=5" in st["variants"][0]["prompt"] and "sr=2.5" in st["variants"][0]["prompt"]
    first = [v["beatmap"].notes for v in st["variants"]]
    st["generate"]()
    assert [v["beatmap"].notes for v in st["variants"]] == first        # same seed, same charts
    p = Wg.save_variant(st["variants"][0], tmp_path)
    assert p.suffix == ".osz" and p.exists()


def test_studio_reports_bad_prompt_without_raising(model):
    ui, st = Wg.studio(song=Wg.synthetic_song(seed=1, duration=5.0), model=model)
    Wg.write_controls(st["ctl"], {"steps": 2, "count": 1})
    st["ctl"]["sr"].max = 100; st["ctl"]["sr"].value = 99.0      # out of the vocabulary's range
    st["generate"]()
    assert st["error"] and "sr" in st["error"] and st["variants"] == []


def test_invert_tab_fills_controls(tmp_path):
    from mug_nb.osu import Note, write_osu
    notes = [Note(300 + 150 * i, i % 4, None) for i in range(300)]
    p = write_osu(E.make_beatmap(notes, [P.make_timing_point(300, 200)], title="t"), tmp_path / "c.osu")
    ctl = {}
    tab = Wg._invert_tab(ctl)
    d = Wg.default_controls()
    Wg._prompt_controls(ctl, d)
    path, btn = tab.children[0].children
    path.value = str(p)
    btn.click()
    assert ctl["sr_on"].value and ctl["msd_on"].value and ctl["sr"].value != d["sr"]


def test_invert_upload_matches_invert_chart(tmp_path):
    from mug_nb.osu import Note, write_osu
    notes = [Note(500 + 120 * i, (i * 3) % 4, None) for i in range(200)]
    p = write_osu(E.make_beatmap(notes, [P.make_timing_point(500, 125)], title="t"), tmp_path / "c.osu")
    assert Wg.invert_upload("c.osu", memoryview(p.read_bytes())) == G.invert_chart(p)
    with pytest.raises(ValueError):
        Wg.invert_upload("bad.osu", b"not a chart")
