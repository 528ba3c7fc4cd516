"""How good is the bundled model? Placement, control and real-music figures.

    OMP_NUM_THREADS=1 python benchmarks/bench_model_quality.py [--model DIR] [--songs 8] [--steps N] [--cfg SCALE]

1. Unseen synthetic songs (synth seeds 0..N-1; the model was trained on seeds >= 1000): for each song, each of the
   four standard difficulties is a reference chart; the model is asked for the prompt of that chart
   (`prompt_from_chart`, "chart to prompt") and its chart is scored:
   * placement F1 at ±50 ms (goal >= 0.9) and ±20 ms, micro over all charts;
   * |star rating - requested| for requests between 1.5 and 5 (median, goal <= 0.5);
   * |LN ratio - requested| (median, goal <= 0.1).
   The charting rule itself draws at random among rows of near-equal salience; the same rule with another seed
   scores 0.98 against the reference (per difficulty 0.96 / 0.98 / 0.99 / 0.99 on 8 songs, 3 seeds), so the goal
   is reachable in principle: what stands between is the model. The script prints this ceiling as it goes.
   Also an SR sweep: {"sr": s} alone for s in 1.5 .. 5 on the fastest test songs.
2. Real songs with human charts (when ../shared/peer_data is present): triangles (4K Easy) and the Frets on Fire
   song "Metal madness" (5-fret MIDI folded to 4K; its constant offset is estimated on the guitar stem and
   removed). The model (prompt = the human chart's prompt) vs `librosa.onset.onset_detect`, both by placement F1
   at ±50 ms, pooled over 8 variants (seeds 0-7; with 2, one chart's F1 moved by up to 0.04 between models that
   8 variants put within 0.01 of each other). Offsets come from `tools/fof.py`'s `estimate_offset`, a short-window
   onset strength: on synthetic songs (true offset 0) it reads +3..+9 ms, where librosa's default 2048-sample
   window reads +10..+38 ms, late like onset_detect itself (`python tools/fof.py --bias`). Also printed, as
   sensitivity checks: the triangles chart moved by its estimated offset (its audio is sample-aligned with the
   original, so "as given" is the main row), and Metal madness [medium] moved by the default-window estimate.
3. Every generated chart is written with `dumps_osu` and read back with our reader and with rosu-pp-py.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

import torch  # noqa: E402

from mug_nb.evaluate import placement_f1, pool  # noqa: E402
from mug_nb.features import ln_ratio, prompt_from_chart, star_rating  # noqa: E402
from mug_nb.osu import Beatmap, dumps_osu, read_osu  # noqa: E402

PEER = ROOT.parent / "shared" / "peer_data"
STANDARD = ("Easy", "Normal", "Hard", "Insane")


def load_model(path):
    from mug_nb.generate import load_bundled
    from mug_nb.model import load_checkpoint
    return load_bundled(allow_random=False) if path is None else load_checkpoint(path).eval()


def gen(model, wave, prompt, args, seed=0):
    from mug_nb.generate import generate
    return generate(wave, clip_prompt(prompt, model), count=1, steps=args.steps, cfg_scale=args.cfg, seed=seed, model=model,
                    snap=None if args.snap == 0 else args.snap, refine=not args.no_refine,
                    tolerance=None if args.tolerance == "off" else float(args.tolerance))[0]


def clip_prompt(prompt: dict, model) -> dict:
    "Clip numeric prompt values into the model's vocabulary ranges (below 1 star is the floor of `default_v1`)."
    from mug_nb.model import model_vocab
    rng = {f.name: (f.min, f.max) for f in model_vocab(model).features if f.kind == "numeric"}
    return {k: (min(max(v, rng[k][0]), rng[k][1]) if k in rng else v) for k, v in prompt.items()}


def roundtrip_ok(bm: Beatmap) -> bool:
    import rosu_pp_py
    text = dumps_osu(bm)
    back = read_osu(text)
    rosu_pp_py.Difficulty().calculate(rosu_pp_py.Beatmap(content=text))
    return [(n.time, n.column, n.end) for n in back.notes] == [(n.time, n.column, n.end) for n in bm.notes]


def synthetic(model, args, report):
    from mug_nb.synth import chart_for_song, synth_song
    f50, f20, sr_err, ln_err, rows, ok, ceiling = [], [], [], [], [], [], []
    songs = [synth_song(s, duration=args.duration) for s in range(args.songs)]
    for song in songs:
        for d in STANDARD:
            ref = chart_for_song(song, d)
            ceiling.append(placement_f1(chart_for_song(song, d, seed=1), ref, 50))   # the rule, drawn again
            prompt = prompt_from_chart(ref)
            g = gen(model, song.wave, prompt, args)
            ok.append(roundtrip_ok(g))
            s50, s20 = placement_f1(g, ref, 50), placement_f1(g, ref, 20)
            f50.append(s50); f20.append(s20)
            sr_g = star_rating(g) if g.notes else 0.0
            if 1.5 <= prompt["sr"] <= 5: sr_err.append(abs(sr_g - prompt["sr"]))
            ln_err.append(abs((ln_ratio(g) if g.notes else 0.0) - prompt["ln_ratio"]))
            rows.append(dict(song=song.name, bpm=round(song.bpm), diff=d, f1_50=round(float(s50), 3),
                             P=round(s50.precision, 3), R=round(s50.recall, 3), sr_req=round(prompt["sr"], 2),
                             sr_gen=round(sr_g, 2), ln_req=round(prompt["ln_ratio"], 2),
                             ln_gen=round(ln_ratio(g) if g.notes else 0.0, 2)))
            print(rows[-1], flush=True)
    # SR sweep: only "sr" requested, on the fastest songs
    sweep = []
    fast = sorted(songs, key=lambda s: -s.bpm)[:max(1, args.songs // 4)]
    for song in fast:
        for sr in (1.5, 2.0, 3.0, 4.0, 5.0):
            g = gen(model, song.wave, {"sr": sr}, args, seed=1)
            ok.append(roundtrip_ok(g))
            sweep.append((song.name, sr, round(star_rating(g), 2) if g.notes else 0.0))
    print("SR sweep (song, requested, got):", sweep)
    report["synthetic"] = dict(
        songs=args.songs, charts=len(f50), placement_f1_50ms_micro=float(pool(f50)),
        rule_redrawn_f1_50ms_micro=float(pool(ceiling)),
        placement_f1_50ms_per_chart=float(pool(f50, "chart")), placement_f1_20ms_micro=float(pool(f20)),
        placement_f1_50ms_by_difficulty={d: float(pool(f50[i::len(STANDARD)])) for i, d in enumerate(STANDARD)},
        median_abs_sr_error_1p5_to_5=float(np.median(sr_err)) if sr_err else None, n_sr_requests=len(sr_err),
        median_abs_ln_ratio_error=float(np.median(ln_err)),
        sr_sweep_median_abs_error=float(np.median([abs(a - b) for _, a, b in sweep])), sr_sweep=sweep, rows=rows)
    report["roundtrip_failures"] = report.get("roundtrip_failures", 0) + sum(not x for x in ok)


def real(model, args, report):
    import librosa
    from fof import fof_mix, fof_reference
    out = {}
    cases = []
    tri_osu = PEER / "maps/gosu/cYsmix - triangles (MuangMuangE) [Easy].osu"
    tri_ogg = PEER / "audio/osu-resources-derived/triangles_transcoded.ogg"
    if tri_osu.exists() and tri_ogg.exists():
        from fof import estimate_offset
        from mug_nb.osu import Note
        ref, wave = read_osu(tri_osu), librosa.load(tri_ogg, sr=22050)[0]
        cases.append(("triangles [Easy] (as given)", wave, ref, prompt_from_chart(ref)))
        # also scored moved by the offset that best lines it up with the audio's onsets (`fof.estimate_offset`, +25 ms)
        lag = int(round(estimate_offset(ref.notes, wave, 22050, max_lag_ms=300)))
        out["triangles_offset_ms"] = lag
        moved = Beatmap(general={}, metadata={}, difficulty={"CircleSize": 4}, events=[], timing_points=[], path=None,
                        notes=[Note(n.time + lag, n.column, None if n.end is None else n.end + lag) for n in ref.notes])
        cases.append((f"triangles [Easy] (shifted {lag:+d} ms)", wave, moved, prompt_from_chart(ref)))
    fof = PEER / "audio/fretsonfire-sectoid/Metal_madness"
    if fof.exists():
        wave = fof_mix(fof)
        # The offset comes from a short-window onset strength (`fof.estimate_offset`, about +7 ms late on the
        # synthetic songs); librosa's default window reads about 20 ms later still, which is where onset_detect's
        # onsets sit too: the last row shows the scores against a chart moved by that estimate instead.
        for diff, est in (("easy", {}), ("medium", {}), ("medium", {"n_fft": 2048, "hop": 64})):
            notes, lag = fof_reference(fof, diff, **est)
            ref = Beatmap(general={}, metadata={}, difficulty={"CircleSize": 4}, events=[], timing_points=[],
                          notes=notes, path=None)
            if est: name = f"Metal madness [{diff}] (offset {lag:+.0f} ms, librosa's default window)"
            else: name = f"Metal madness [{diff}]"; out["fof_offset_ms"] = lag
            cases.append((name, wave, ref, prompt_from_chart(ref)))
    for name, wave, ref, prompt in cases:
        onsets = librosa.onset.onset_detect(y=wave, sr=22050, units="time") * 1000
        base = placement_f1(onsets, ref, 50)
        scores = []
        for seed in range(args.real_variants):
            g = gen(model, wave, prompt, args, seed=seed)
            report["roundtrip_failures"] = report.get("roundtrip_failures", 0) + (not roundtrip_ok(g))
            scores.append(placement_f1(g, ref, 50))
        m = pool(scores)
        out[name] = dict(model_f1_50ms=float(m), model_P=m.precision, model_R=m.recall,
                         onset_detect_f1_50ms=float(base), onset_P=base.precision, onset_R=base.recall,
                         ref_notes=len(ref.notes), ref_sr=round(prompt["sr"], 2))
        print(name, out[name], flush=True)
    report["real"] = out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="checkpoint folder (default: the bundled model)")
    ap.add_argument("--songs", type=int, default=8)
    ap.add_argument("--duration", type=float, default=40.0)
    ap.add_argument("--steps", type=int, default=None, help="DDIM steps (default: the model's own, 10 for the bundled model)")
    ap.add_argument("--cfg", type=float, default=None, help="guidance scale (default: the model's own, 2 for the bundled model)")
    ap.add_argument("--snap", type=int, default=0, help="snap divisor passed to generate (0: no snapping)")
    ap.add_argument("--no-refine", action="store_true", help="skip the model's note-frame refiner (the draft alone)")
    ap.add_argument("--tolerance", default="1", help="closed-loop control, as generate's `tolerance` (default 1; 'off': the model alone)")
    ap.add_argument("--real-variants", type=int, default=8, help="variants per real chart, pooled")
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--skip-synthetic", action="store_true")
    ap.add_argument("--json", default=None, help="also write the report here")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.time()
    model = load_model(args.model)
    report = {"args": vars(args)}
    if not args.skip_synthetic: synthetic(model, args, report)
    if not args.skip_real and PEER.exists(): real(model, args, report)
    report["seconds"] = round(time.time() - t0, 1)
    print("\n== bundled model quality ==")
    s = report.get("synthetic")
    if s:
        print(f"synthetic unseen songs: {s['songs']} songs, {s['charts']} charts")
        print(f"  placement F1 ±50 ms (micro) {s['placement_f1_50ms_micro']:.3f}  (goal >= 0.9); per chart "
              f"{s['placement_f1_50ms_per_chart']:.3f}; ±20 ms {s['placement_f1_20ms_micro']:.3f}")
        print("  ... by difficulty (micro): " + " / ".join(f"{d} {v:.3f}" for d, v in s["placement_f1_50ms_by_difficulty"].items()))
        print(f"  ceiling: the charting rule redrawn with another seed scores {s['rule_redrawn_f1_50ms_micro']:.3f}")
        print(f"  median |SR - requested| (requests 1.5-5, n={s['n_sr_requests']}) {s['median_abs_sr_error_1p5_to_5']}"
              f"  (goal <= 0.5); SR-only sweep {s['sr_sweep_median_abs_error']:.3f}")
        print(f"  median |LN ratio - requested| {s['median_abs_ln_ratio_error']:.3f}  (goal <= 0.1)")
    for name, r in report.get("real", {}).items():
        if isinstance(r, dict):
            print(f"real: {name}: model F1 ±50 ms {r['model_f1_50ms']:.3f} vs onset_detect {r['onset_detect_f1_50ms']:.3f}")
    if "fof_offset_ms" in report.get("real", {}): print(f"  Frets on Fire offset removed: {report['real']['fof_offset_ms']:+.0f} ms")
    if "triangles_offset_ms" in report.get("real", {}):
        print(f"  triangles offset estimated (short-window onset-strength correlation): {report['real']['triangles_offset_ms']:+d} ms")
    print(f"charts that failed to read back (ours / rosu-pp): {report.get('roundtrip_failures', 0)}")
    print(f"time {report['seconds']} s")
    if args.json: Path(args.json).write_text(json.dumps(report, indent=1, default=float))


if __name__ == "__main__":
    main()
