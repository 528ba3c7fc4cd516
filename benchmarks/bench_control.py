"""Control as users ask: one feature at a time (the CLI's `--sr X`), a few pairs and the empty prompt, on real songs and
on synthetic songs the bundled model never heard, with the closed loop off (the model alone) and on (the default).

    python benchmarks/bench_control.py [--mode both|plain|steered] [--quick] [--plot benchmarks/control_calibration.png]

Real songs are the ones in ../shared/peer_data/audio that have audio (stems mixed where a song has them); without that
folder only the synthetic songs run. Prints, per feature: median |got - asked|, the share within tolerance, and the
Spearman correlation of got vs asked on each song; draws the star-rating calibration curves (one line per song).
"""
import argparse
import io
import os
import sys
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))                      # run from a checkout without installing
from mug_nb import generate as G  # noqa: E402
from mug_nb.control import EMPHASES, measure, top_patterns  # noqa: E402
from mug_nb.features import SKILLSETS  # noqa: E402

PEER = ROOT.parent / "shared" / "peer_data" / "audio"
BAND = dict(sr=0.5, overall=1.5, ln_ratio=0.05, skillset=1.5)     # "within tolerance" for the table


def real_songs(min_seconds: float):
    "(name, waveform or path) for every real song with audio; stems mixed."
    import librosa
    if not PEER.is_dir(): return [], []
    songs, loops = [], []
    for p in sorted(PEER.rglob("*")):
        if p.suffix.lower() in (".ogg", ".wav", ".mp3") and p.name != "guitar.ogg":
            wave, _ = librosa.load(p, sr=22050, mono=True)
            stem = p.with_name("guitar.ogg")
            if p.name == "song.ogg" and stem.exists():            # a song with a stem: play both, as the game does
                g, _ = librosa.load(stem, sr=22050, mono=True)
                n = min(len(wave), len(g)); wave = (wave[:n] + g[:n]) / 2
            name = p.parent.name if p.stem == "song" else p.stem
            (songs if len(wave) >= min_seconds * 22050 else loops).append((name, wave))
        elif p.suffix.lower() == ".osz":
            with zipfile.ZipFile(p) as z:
                for m in z.namelist():
                    if Path(m).suffix.lower() in (".mp3", ".ogg", ".wav"):
                        wave, _ = librosa.load(io.BytesIO(z.read(m)), sr=22050, mono=True)
                        (songs if len(wave) >= min_seconds * 22050 else loops).append((p.stem, wave)); break
    return songs, loops


def synthetic_songs(n: int, seconds: float):
    from mug_nb.synth import synth_song
    return [(f"synth-{s}", synth_song(seed=s, duration=seconds).wave) for s in range(9001, 9001 + n)]


def requests(quick: bool):
    "(feature, asked value, prompt): what a user types, one feature at a time, then pairs and nothing."
    step = 2 if quick else 1
    out = [("sr", s, {"sr": s}) for s in np.arange(1, 7.01, 0.5)[::step]]
    out += [("ett", e, {"ett": e}) for e in range(6, 31, 2 * step)]
    out += [("ln_ratio", r, {"ln_ratio": r}) for r in np.round(np.arange(0, 0.91, 0.1), 1)[::step]]
    out += [("flag", k, {k: True}) for k in EMPHASES]
    out += [("skillset", (k, v), {f"{k}_ett": v}) for k in SKILLSETS[1:] for v in (10, 20)[: 2 // step]]
    out += [("rank_status", v, {"rank_status": v}) for v in ("ranked", "loved", "graveyard")]
    out += [("map_type", k, {k: 1}) for k in ("rc", "hb", "ln")]
    out += [("pair", p, p) for p in ({"sr": 2.0, "ln_ratio": 0.2}, {"sr": 4.0, "ln_ratio": 0.5}, {"sr": 6.0, "ln_ratio": 0.3},
                                      {"sr": 3.0, "jackspeed": True}, {"sr": 5.0, "stream": True}, {"sr": 4.0, "chordjack": True})]
    out += [("empty", None, {})]
    return [(f, float(v) if isinstance(v, (float, np.floating, int)) and not isinstance(v, bool) else v, dict(
        {k: (float(x) if isinstance(x, (np.floating, float)) else x) for k, x in p.items()})) for f, v, p in out]


def run(songs, reqs, mode, count, seed, model=None):
    rows = []
    model = model if model is not None else G.load_bundled()
    for name, wave in songs:
        song = G.prepare_audio(wave, title=name)
        t0 = time.perf_counter()
        for feature, asked, prompt in reqs:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                charts = G.generate(song, prompt, count=count, seed=seed, model=model,
                                    tolerance=None if mode == "plain" else 1.0)
            for bm in charts: rows.append(dict(song=name, feature=feature, asked=asked, prompt=prompt, m=measure(bm)))
        print(f"  {mode:8s} {name:28s} {len(song.wave) / 22050:6.1f} s  {len(reqs)} requests in {time.perf_counter() - t0:6.1f} s",
              flush=True)
    return rows


def spearman(x, y) -> float:
    from scipy.stats import spearmanr
    if np.ptp(y) == 0: return 0.0
    return float(spearmanr(x, y).statistic)


def numeric_table(rows, feature, key, band):
    sel = [r for r in rows if r["feature"] == feature]
    if not sel: return None
    asked = np.array([r["asked"][1] if isinstance(r["asked"], tuple) else r["asked"] for r in sel], float)
    got = np.array([r["m"][key(r)] for r in sel], float)
    err = np.abs(got - asked)
    rhos = {}
    for s in sorted({r["song"] for r in sel}):
        i = [k for k, r in enumerate(sel) if r["song"] == s]
        if len(set(asked[i])) > 2: rhos[s] = spearman(asked[i], got[i])
    return dict(n=len(sel), median=float(np.median(err)), within=float(np.mean(err <= band)), rhos=rhos)


def report(rows, title):
    print(f"\n== {title}")
    print(f"{'feature':12s} {'n':>4s} {'median |err|':>13s} {'within':>8s} {'Spearman per song: min / median':>32s}")
    for feature, key, band in (("sr", lambda r: "sr", BAND["sr"]), ("ett", lambda r: "overall", BAND["overall"]),
                               ("ln_ratio", lambda r: "ln_ratio", BAND["ln_ratio"]),
                               ("skillset", lambda r: r["asked"][0], BAND["skillset"])):
        t = numeric_table(rows, feature, key, band)
        if t is None: continue
        rho = list(t["rhos"].values())
        rs = f"{min(rho):.3f} / {np.median(rho):.3f}" if rho else "-"
        print(f"{feature:12s} {t['n']:4d} {t['median']:13.3f} {t['within']:7.0%} (±{band}) {rs:>22s}")
    flags = [r for r in rows if r["feature"] == "flag"]
    if flags:
        per = {k: np.mean([r["asked"] in top_patterns(r["m"]) for r in flags if r["asked"] == k]) for k in EMPHASES}
        print(f"{'flag more':12s} {len(flags):4d}  in the top two: {np.mean([r['asked'] in top_patterns(r['m']) for r in flags]):.0%}"
              f"  ({', '.join(f'{k} {v:.0%}' for k, v in per.items())})")
    from mug_nb.control import TYPE_RANGES
    types = [r for r in rows if r["feature"] == "map_type"]
    if types:
        ok = [TYPE_RANGES[r["asked"]][0] <= r["m"]["ln_ratio"] <= TYPE_RANGES[r["asked"]][1] for r in types]
        print(f"{'map type':12s} {len(types):4d}  long-note ratio in the type's range: {np.mean(ok):.0%}")
    pairs = [r for r in rows if r["feature"] == "pair"]
    if pairs:
        def both(r):
            p, m = r["prompt"], r["m"]
            ok = abs(m["sr"] - p["sr"]) <= BAND["sr"]
            if "ln_ratio" in p: ok &= abs(m["ln_ratio"] - p["ln_ratio"]) <= BAND["ln_ratio"]
            ok &= all(k in top_patterns(m) for k in EMPHASES if p.get(k) is True)
            return ok
        print(f"{'pairs':12s} {len(pairs):4d}  both targets held: {np.mean([both(r) for r in pairs]):.0%}")
    rank = [r for r in rows if r["feature"] in ("rank_status", "empty")]
    if rank:
        print(f"{'rank / empty':12s} {len(rank):4d}  (nothing to measure) star rating {np.median([r['m']['sr'] for r in rank]):.2f} median, "
              f"long-note ratio {np.median([r['m']['ln_ratio'] for r in rank]):.2f} median")


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axs = plt.subplots(1, len(results), figsize=(4.2 * len(results), 4), sharey=True, squeeze=False)
    for ax, (mode, rows) in zip(axs[0], results.items()):
        sel = [r for r in rows if r["feature"] == "sr"]
        for s in sorted({r["song"] for r in sel}):
            pts = sorted((r["asked"], r["m"]["sr"]) for r in sel if r["song"] == s)
            ax.plot(*zip(*pts), "o-", ms=3, lw=1, label=s)
        ax.plot([1, 7], [1, 7], "k:", lw=1)
        ax.set_title({"plain": "the model alone (tolerance=None)", "steered": "closed loop (default)"}[mode], fontsize=10)
        ax.set_xlabel("asked star rating (--sr)")
    axs[0][0].set_ylabel("star rating of the written chart"); axs[0][-1].legend(fontsize=6)
    fig.tight_layout(); fig.savefig(path, dpi=80); print(f"\nwrote {path}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("both", "plain", "steered"), default="both")
    ap.add_argument("--quick", action="store_true", help="every other value of each sweep")
    ap.add_argument("--count", type=int, default=1, help="variants per request")
    ap.add_argument("--synthetic", type=int, default=2, help="unseen synthetic songs")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--min-seconds", type=float, default=30.0, help="shorter real audio is reported apart (loops)")
    ap.add_argument("--plot", default=str(ROOT / "benchmarks" / "control_calibration.png"))
    ap.add_argument("--model", default=None, help="checkpoint folder (default: the bundled model)")
    a = ap.parse_args(argv)
    from mug_nb.model import load_checkpoint
    model = load_checkpoint(a.model).eval() if a.model else None
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    real, loops = real_songs(a.min_seconds)
    synth = synthetic_songs(a.synthetic, 90.0)
    reqs = requests(a.quick)
    print(f"{len(real)} real songs, {len(loops)} short loops, {len(synth)} unseen synthetic songs; {len(reqs)} requests each, "
          f"{a.count} variant(s); seed {a.seed}")
    results = {}
    for mode in (("plain", "steered") if a.mode == "both" else (a.mode,)):
        groups = {"real songs": run(real, reqs, mode, a.count, a.seed, model),
                  "unseen synthetic songs": run(synth, reqs, mode, a.count, a.seed, model)}
        if loops: groups["short loops (< %g s)" % a.min_seconds] = run(loops, reqs, mode, a.count, a.seed, model)
        for g, rows in groups.items():
            if rows: report(rows, f"{mode}: {g}")
        results[mode] = groups["real songs"] + groups["unseen synthetic songs"]
    if a.plot: plot(results, a.plot)


if __name__ == "__main__":
    main()
