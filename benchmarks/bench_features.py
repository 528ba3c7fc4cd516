"""Benchmark of mug_nb.features: the skillset estimator against MinaCalc 434, and its speed.

    python benchmarks/bench_features.py

Prints, on the charts of ../shared/peer_data/reference/minacalc_calibration.csv (when present), Spearman rho
and mean absolute error of our `overall` and of each skillset against `mina434_*`, then the time of one
`skillsets` call on a 5-minute 4K chart (synthetic, always available; plus the longest calibration chart).
Goal: rho >= 0.9 and MAE <= 1.5 for overall, rho >= 0.7 for each skillset, <= 50 ms per call.
"""
import csv
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from mug_nb.features import SKILLSETS, _chart, skillsets, star_rating
from mug_nb.osu import read_osu

PEER = ROOT.parent / "shared" / "peer_data"


def spearman(a, b) -> float:
    ra = np.argsort(np.argsort(a)).astype(float); rb = np.argsort(np.argsort(b)).astype(float)
    return float(np.corrcoef(ra, rb)[0, 1])


def five_minute_chart(nps: float = 12.0, seed: int = 0):
    "A 300 s 4K chart: stream with jumps, hands and short jack bursts (about 3,900 notes)."
    rng = np.random.default_rng(seed); notes, prev = [], 0
    for i in range(int(300 * nps)):
        t = round(i * 1000 / nps); c = int((prev + rng.integers(0 if i % 50 < 4 else 1, 4)) % 4); prev = c
        notes.append((t, c))
        if i % 4 == 0: notes.append((t, (c + 2) % 4))
        if i % 16 == 0: notes.append((t, (c + 1) % 4))
    return _chart(notes)


def time_call(bm, repeat: int = 20) -> float:
    skillsets(bm)
    best = []
    for _ in range(repeat):
        t0 = time.perf_counter(); skillsets(bm); best.append(time.perf_counter() - t0)
    return 1000 * float(np.median(best))


def main():
    if (PEER / "reference" / "minacalc_calibration.csv").is_file():
        rows = list(csv.DictReader(open(PEER / "reference" / "minacalc_calibration.csv")))
        zero = [r["file"] for r in rows if float(r["mina434_overall"]) == 0]
        rows = [r for r in rows if float(r["mina434_overall"]) > 0]
        ours = [skillsets(read_osu(PEER / r["file"])) for r in rows]
        print(f"MinaCalc 434 calibration charts: {len(rows)} (left out, v434 returns 0 for charts > ~750 s: {zero})\n")
        print(f"{'chart':44s} {'mina overall':>12s} {'ours':>6s}  {'SR':>5s}")
        for r, o in zip(rows, ours):
            print(f"{Path(r['file']).name[:44]:44s} {float(r['mina434_overall']):12.2f} {o['overall']:6.2f}  "
                  f"{star_rating(read_osu(PEER / r['file'])):5.2f}")
        print(f"\n{'skillset':12s} {'spearman':>8s} {'MAE':>6s} {'bias':>6s}  goal")
        for k in SKILLSETS:
            a = np.array([o[k] for o in ours]); b = np.array([float(r[f"mina434_{k}"]) for r in rows])
            rho, mae = spearman(a, b), float(np.abs(a - b).mean())
            goal = "rho>=0.9, MAE<=1.5" if k == "overall" else "rho>=0.7"
            ok = (rho >= 0.9 and mae <= 1.5) if k == "overall" else rho >= 0.7
            print(f"{k:12s} {rho:8.3f} {mae:6.2f} {float((a - b).mean()):+6.2f}  {goal} {'ok' if ok else 'MISSED'}")
    else:
        print("../shared/peer_data is absent: accuracy part skipped")
    bm = five_minute_chart()
    print(f"\nskillsets on a 5-minute synthetic 4K chart ({len(bm.notes)} notes): {time_call(bm):.1f} ms per call (median of 20)")
    if (PEER / "maps/reamberPy/Staminal.osu").is_file():
        st = read_osu(PEER / "maps/reamberPy/Staminal.osu")
        print(f"skillsets on Staminal.osu (300 s, {len(st.notes)} notes): {time_call(st):.1f} ms per call")


if __name__ == "__main__":
    main()
