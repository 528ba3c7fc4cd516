"""Generation speed: a 3-minute song, 4 variants, 50 DDIM steps with guidance (goal: <= 10 s on a 2-core CPU).

    python benchmarks/bench_generate.py [--seconds 180] [--count 4] [--steps 50] [--checkpoint DIR] [--profile]

Prints the time of each stage (audio → mel, audio encoder, DDIM, decode and refiner, post-processing) and the total.
Then the cost of closed-loop control (18_control): `generate` with the loop off (`tolerance=None`) and on (the default)
for single-feature prompts, interleaved, at the model's own settings and at the bench's; goal: on ≤ 2× off.
With --profile, prints the modules where the U-Net spends its time.
"""
import argparse
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))       # run from a checkout without installing

from mug_nb import generate as G
from mug_nb import postprocess as P  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--count", type=int, default=4)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--cfg", type=float, default=5.0)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--checkpoint", help="a save_checkpoint folder (default: the bundled model)")
    a = ap.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    from mug_nb.synth import synth_song
    if a.checkpoint:
        from mug_nb.model import load_checkpoint
        model, kind = G.sampling_model(load_checkpoint(a.checkpoint)), f"checkpoint {a.checkpoint}"
    else:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            model = G.sampling_model()
        kind = "random tiny (no bundled weights)" if w else "bundled"
    n_params = sum(p.numel() for p in model.parameters())
    wave = synth_song(seed=0, duration=a.seconds).wave
    print(f"model: {kind}, {n_params / 1e6:.2f} M parameters; song {a.seconds:.0f} s; "
          f"{a.count} variants, {a.steps} steps, cfg {a.cfg}; torch threads {torch.get_num_threads()}")

    t = {}
    c0 = time.process_time()
    t0 = time.perf_counter()
    song = G.prepare_audio(wave)
    t["audio → mel"] = time.perf_counter() - t0

    calls = []
    t1 = time.perf_counter()
    z = G.sample_latents(model, song, {"sr": 4.0}, a.count, a.steps, a.cfg, seed=0,
                         progress=lambda i: calls.append(time.perf_counter()))
    t["encoder + DDIM"] = time.perf_counter() - t1
    if calls: t["  of which first U-Net call at"] = calls[0] - t1
    t2 = time.perf_counter()
    notes = G.decode_notes(model, z, song.duration_ms, song=song, prompt={"sr": 4.0})
    t["VAE decode" + (" + refiner" if getattr(model, "refiner", None) is not None else "")] = time.perf_counter() - t2
    t3 = time.perf_counter()
    for ns in notes:
        if ns: P.postprocess(ns, snap=16, jack_interval=90)
    t["post-processing"] = time.perf_counter() - t3
    total, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"latent length {z.shape[-1]}, DDIM steps {len(calls)}, notes per variant {[len(n) for n in notes]}")
    for k, v in t.items(): print(f"{k:32s} {v:7.2f} s")
    print(f"{'TOTAL':32s} {total:7.2f} s   (goal <= 10 s) {'OK' if total <= 10 else 'SLOW'}")
    print(f"{'process CPU time':32s} {cpu:7.2f} s   (≈ wall time on an idle machine with {torch.get_num_threads()} thread(s); "
          f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")

    control_cost(model, song, a)

    if a.profile:
        from torch.profiler import profile, ProfilerActivity
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            G.sample_latents(model, song, {"sr": 4.0}, a.count, 3, a.cfg, seed=0)
        print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=20))
    return total


def control_cost(model, song, a, prompts=({"sr": 4.5}, {"sr": 2.0}, {"ett": 20.0}, {"ln_ratio": 0.5}, {"sr": 5.0, "stream": True})):
    "Wall time of generate() with the closed loop off and on, interleaved, for each prompt; the ratio of the medians."
    settings = [("model's settings", dict()), (f"{a.steps} steps, cfg {a.cfg}", dict(steps=a.steps, cfg_scale=a.cfg))]
    print(f"\nclosed-loop control: generate(), {a.count} variants of {song.duration_ms / 1000:.0f} s, off / on (median of 3)")
    for label, kw in settings:
        for p in prompts:
            t = {"off": [], "on": []}
            for _ in range(3):
                for mode, tol in (("off", None), ("on", 1.0)):
                    t0 = time.perf_counter()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        G.generate(song, p, count=a.count, seed=0, model=model, tolerance=tol, **kw)
                    t[mode].append(time.perf_counter() - t0)
            off, on = (float(sorted(v)[1]) for v in (t["off"], t["on"]))
            print(f"  {label:18s} {str(p):32s} off {off:6.2f} s   on {on:6.2f} s   ratio {on / off:4.2f}×  "
                  f"{'OK' if on <= 2 * off else 'OVER'} (goal <= 2×)")


if __name__ == "__main__":
    main()
