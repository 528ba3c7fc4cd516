"""Benchmark of mug_nb.features: the skillset estimator against MinaCalc 434, on jack and vibro charts, and its speed.

    python benchmarks/bench_features.py            # everything (the refits take about half a minute)
    python benchmarks/bench_features.py --quick    # without the refit

Prints, on the charts of ../shared/peer_data/reference/minacalc_calibration.csv (when present):

* Spearman rho and mean absolute error of our `overall` and of each skillset against `mina434_*`
  (goal: overall rho >= 0.95 and MAE <= 1.0, rho >= 0.7 for each skillset);
* a 5-fold held-out refit: the 11 fitted constants of `CALIBRATION` (scale, power, jack scale and power, stamina
  line, five floors) are fitted again on 12 charts and the 3 left out are rated with them, five times, so that
  every chart is predicted by constants that never saw it (then the overall MAE of two more fold splits,
  since 15 charts make the figure depend on the split). This says how well the estimator carries over
  to charts outside the calibration set. (The refit interpolates each floor on a grid of 29 values and keeps the
  jack ceiling of the shipped constants while fitting; the held-out charts are then rated exactly, by `_estimate`.)
  `jack_bound`, `FAST_S` and `VIBRO_FROM` are not refitted: they were set from MinaCalc's behaviour on synthetic
  jack and vibro charts (see 03_features);
* the skillsets of the jack and vibro charts of peer_data/maps/ManiaStarReducer (goal: stream, jumpstream,
  handstream and technical below jackspeed/chordjack, nothing at the cap of 40).

Always: the time of one `skillsets` call on a 5-minute 4K chart (synthetic; plus the longest calibration chart).
Goal <= 50 ms per call.
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

from mug_nb.features import (CALIBRATION, PATTERNS, SKILLSETS, _chart, _estimate, _smooth, BIN_S, jack_ceiling,
                             note_rows, pattern_presence, pattern_table, skillsets, solve_rating, star_rating,
                             vibro_presence)
from mug_nb.osu import read_osu

PEER = ROOT.parent / "shared" / "peer_data"
DENSE = ("stream", "jumpstream", "handstream", "chordjack", "technical")   # the floors of CALIBRATION, in order
JACK_CHARTS = ("hydrangea.osu", "namida.osu", "Chip Skylark - Shiny Teeth (Of Mass M Remix) (Swan) [Vibro Teeth].osu",
               "gravidump.osu")


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


# ---------------------------------------------------------------- refit of the 11 fitted constants
GRID = np.linspace(0.3, 1.0, 29)   # candidate floors


def prepare(times, masks) -> dict:
    "Everything of one chart that does not depend on the fitted constants (floors on a grid)."
    tab = pattern_table(times, masks); pres = pattern_presence(tab)
    hands = np.stack([_smooth(tab["left"]), _smooth(tab["right"])]) / BIN_S
    w = np.stack([tab["left"], tab["right"]]).ravel()
    v, ceiling = vibro_presence(tab), jack_ceiling(tab)
    curves = []
    for k in DENSE:
        for g in GRID:
            d = hands * (g + (1 - g) * pres[k]); curves.append((d - v * np.maximum(0, d - ceiling)).ravel())
    r = solve_rating(np.stack(curves + [hands.ravel()]), w)
    peak = hands.max(0)[tab["notes"] > 0]
    return dict(r=r[:-1].reshape(len(DENSE), len(GRID)), jr=solve_rating(_smooth(tab["column_rate"])[None], tab["notes"])[0],
                c=float(np.mean(np.minimum(peak / max(r[-1], 1e-9), 1.0))))


def pack(cal) -> np.ndarray:
    return np.array([cal["scale"], cal["power"], cal["jack_scale"], cal["jack_power"], cal["stamina_base"],
                     cal["stamina_slope"]] + [cal["floor"][k] for k in DENSE])


def unpack(x) -> dict:
    return {**CALIBRATION, **dict(zip(("scale", "power", "jack_scale", "jack_power", "stamina_base", "stamina_slope"),
                                      map(float, x[:6]))),
            "floor": {k: float(np.clip(f, GRID[0], GRID[-1])) for k, f in zip(DENSE, x[6:])}}


def rate_prepared(p, cal) -> dict:
    "What `_estimate` computes, from a `prepare`d chart (floors interpolated on the grid)."
    out = {k: cal["scale"] * np.interp(cal["floor"][k], GRID, p["r"][i]) ** cal["power"] for i, k in enumerate(DENSE)}
    out["jackspeed"] = cal["jack_scale"] * p["jr"] ** cal["jack_power"]
    out["overall"] = max(out[k] for k in PATTERNS)
    out["stamina"] = max(out[k] for k in DENSE) * min(1.0, cal["stamina_base"] + cal["stamina_slope"] * p["c"])
    return {k: min(out[k], cal["cap"]) for k in SKILLSETS}


def refit(prepared, targets) -> dict:
    "The 11 constants minimising the mean absolute error over these charts x 8 skillsets (from the shipped ones)."
    from scipy.optimize import minimize
    y = np.array([[t[k] for k in SKILLSETS] for t in targets])
    def loss(x):
        cal = unpack(x)
        return float(np.abs(np.array([[o[k] for k in SKILLSETS] for o in (rate_prepared(p, cal) for p in prepared)]) - y).mean())
    res = minimize(loss, pack(CALIBRATION), method="Powell", options=dict(maxfev=4000, xtol=1e-4, ftol=1e-6))
    return unpack(res.x)


def held_out(rows, charts, targets, folds: int = 5, seed: int = 0):
    "Each chart rated with constants refitted on the other folds; returns the held-out skillset dicts."
    order = np.random.default_rng(seed).permutation(len(rows)); out = [None] * len(rows)
    prepared = [prepare(*c) for c in charts]
    for f in range(folds):
        test = set(order[f::folds].tolist()); train = [i for i in range(len(rows)) if i not in test]
        cal = refit([prepared[i] for i in train], [targets[i] for i in train])
        for i in test: out[i] = _estimate(*charts[i], cal)
    return out


def agreement(ours, targets, title, goal=True):
    print(f"\n{title}\n{'skillset':12s} {'spearman':>8s} {'MAE':>6s} {'bias':>6s}" + ("  goal" if goal else ""))
    for k in SKILLSETS:
        a = np.array([o[k] for o in ours]); b = np.array([t[k] for t in targets])
        rho, mae = spearman(a, b), float(np.abs(a - b).mean())
        line = f"{k:12s} {rho:8.3f} {mae:6.2f} {float((a - b).mean()):+6.2f}"
        if goal:
            ok = (rho >= 0.95 and mae <= 1.0) if k == "overall" else rho >= 0.7
            line += f"  {'rho>=0.95, MAE<=1.0' if k == 'overall' else 'rho>=0.7'} {'ok' if ok else 'MISSED'}"
        print(line)


def main(quick: bool = False):
    if (PEER / "reference" / "minacalc_calibration.csv").is_file():
        rows = list(csv.DictReader(open(PEER / "reference" / "minacalc_calibration.csv")))
        zero = [r["file"] for r in rows if float(r["mina434_overall"]) == 0]
        rows = [r for r in rows if float(r["mina434_overall"]) > 0]
        charts = [note_rows(read_osu(PEER / r["file"])) for r in rows]
        targets = [{k: float(r[f"mina434_{k}"]) for k in SKILLSETS} for r in rows]
        ours = [_estimate(*c) for c in charts]
        print(f"MinaCalc 434 calibration charts: {len(rows)} (left out, v434 returns 0 for charts > ~750 s: {zero})\n")
        print(f"{'chart':44s} {'mina overall':>12s} {'ours':>6s}  {'SR':>5s}")
        for r, o in zip(rows, ours):
            print(f"{Path(r['file']).name[:44]:44s} {float(r['mina434_overall']):12.2f} {o['overall']:6.2f}  "
                  f"{star_rating(read_osu(PEER / r['file'])):5.2f}")
        agreement(ours, targets, "shipped CALIBRATION, on the charts it was fitted to")
        if not quick:
            t0 = time.perf_counter(); pred = held_out(rows, charts, targets)
            agreement(pred, targets, f"5-fold held-out refit (each chart rated by constants fitted without it; "
                                     f"{time.perf_counter() - t0:.0f} s)", goal=False)
            maes = [float(np.mean([abs(p["overall"] - t["overall"]) for p, t in zip(held_out(rows, charts, targets, seed=s), targets)]))
                    for s in (1, 2)]
            print(f"overall held-out MAE with two other fold splits: {maes[0]:.2f}, {maes[1]:.2f} "
                  f"(mean of the three: {np.mean(maes + [np.mean([abs(p['overall'] - t['overall']) for p, t in zip(pred, targets)])]):.2f})")
        msr = PEER / "maps" / "ManiaStarReducer"
        print(f"\njack and vibro charts (peer_data/maps/ManiaStarReducer): goal stream, jumpstream, handstream, technical "
              f"< max(jackspeed, chordjack), all < 40\n{'chart':22s}" + "".join(f"{k[:8]:>9s}" for k in SKILLSETS))
        for name in JACK_CHARTS:
            s = skillsets(read_osu(msr / name)); lead = max(s["jackspeed"], s["chordjack"])
            ok = all(s[k] < lead for k in ("stream", "jumpstream", "handstream", "technical")) and max(s.values()) < 40
            print(f"{name[:22]:22s}" + "".join(f"{s[k]:9.2f}" for k in SKILLSETS) + f"  {'ok' if ok else 'MISSED'}")
    else:
        print("../shared/peer_data is absent: accuracy part skipped")
    bm = five_minute_chart()
    print(f"\nskillsets on a 5-minute synthetic 4K chart ({len(bm.notes)} notes): {time_call(bm):.1f} ms per call (median of 20)")
    if (PEER / "maps/reamberPy/Staminal.osu").is_file():
        st = read_osu(PEER / "maps/reamberPy/Staminal.osu")
        print(f"skillsets on Staminal.osu (300 s, {len(st.notes)} notes): {time_call(st):.1f} ms per call")


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])
