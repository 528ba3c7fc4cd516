"""How much of the prompt space the training charts cover: the eight SYNTH_CHARTS alone ("base") against them plus
CORNER_CHARTS ("wide"), measured on the prompts of the 23.8-s windows the model learns from.

    OMP_NUM_THREADS=1 python benchmarks/bench_prompt_coverage.py [--songs 12]

Prints, per chart set: the share of windows in each star-rating band, overall-MSD band and long-note-ratio band,
and how often each skillset is the window's top one.
"""
import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from mug_nb.features import SKILLSETS  # noqa: E402
from mug_nb.synth import CORNER_CHARTS, chart_for_song, synth_song  # noqa: E402
from mug_nb.train import SYNTH_CHARTS  # noqa: E402

WINDOW_MS = 512 * 46.4399


def window_prompts(charts, seeds):
    "The prompt of every 512-frame window (hop 256) of every chart of every song."
    from mug_nb.features import prompt_from_chart
    import dataclasses
    out = []
    for s in seeds:
        song = synth_song(s, duration=48)
        for j, (d, over) in enumerate(charts):
            bm = chart_for_song(song, d, seed=j, **over)
            for t0 in np.arange(0, 48000 - WINDOW_MS + 1, WINDOW_MS / 2):
                sub = [dataclasses.replace(n, time=n.time - int(t0), end=None if n.end is None else n.end - int(t0))
                       for n in bm.notes if t0 <= n.time < t0 + WINDOW_MS]
                if len(sub) > 1: out.append(prompt_from_chart(dataclasses.replace(bm, notes=sub)))
    return out


def bands(values, edges):
    h = np.histogram(np.clip(values, edges[0], edges[-1] - 1e-9), edges)[0]
    return " ".join(f"{int(round(100 * c / len(values))):3d}" for c in h)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--songs", type=int, default=12)
    args = ap.parse_args(argv)
    seeds = range(1000, 1000 + args.songs)
    sr_e, msd_e, ln_e = [0, 1, 2, 3, 4, 5, 6, 7, 8, 99], [0, 5, 10, 15, 20, 25, 30, 99], [0, .1, .3, .5, .7, .9, 1.01]
    print(f"windows of {args.songs} synthetic songs; shares in %")
    print(f"{'':6s} {'stars  <1  1-2 2-3 3-4 4-5 5-6 6-7 7-8 >8':44s}")
    res = {}
    for name, charts in (("base", SYNTH_CHARTS), ("wide", SYNTH_CHARTS + CORNER_CHARTS)):
        res[name] = window_prompts(charts, seeds)
    for name, ps in res.items():
        print(f"{name:6s} stars      {bands([p['sr'] for p in ps], sr_e)}   ({len(ps)} windows)")
    print(f"{'':6s} {'MSD    <5 5-10 -15 -20 -25 -30 >30'}")
    for name, ps in res.items(): print(f"{name:6s} MSD        {bands([p['ett'] for p in ps], msd_e)}")
    print(f"{'':6s} {'LN    <.1 -.3 -.5 -.7 -.9 >.9'}")
    for name, ps in res.items(): print(f"{name:6s} LN ratio   {bands([p['ln_ratio'] for p in ps], ln_e)}")
    for name, ps in res.items():
        top = Counter(max(SKILLSETS[1:], key=lambda k: p[f"{k}_ett"]) for p in ps)
        print(f"{name:6s} top skillset: " + ", ".join(f"{k} {100 * top[k] / len(ps):.0f}%" for k in SKILLSETS[1:]))


if __name__ == "__main__":
    main()
