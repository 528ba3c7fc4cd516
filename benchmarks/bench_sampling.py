"""Seconds per DDIM step of the full MuG model at latent 16 x 512, without and with guidance,
before and after each inference optimisation.

    python benchmarks/bench_sampling.py [--threads 1] [--reps 3] [--config full|tiny] [--steps N] [--frozen] [--compile]
                                        [--no-song] [--conv-table] [--original DIR]

Every stage is the reference model (`build_model`) rewritten by `mug_nb.fast.optimize_for_inference(model,
rewrites=...)` with the rewrites named so far; the last stage is `optimize_for_inference(model)`, what generation
uses. Stages (cumulative):
  baseline       the reference model, eval + no_grad; S4 kernels recomputed every call (their cache switched off);
                 guidance re-concatenates the prompt and all audio maps every step (as the original does)
  +s4_cache      S4 kernels (and their FFTs) cached: they depend only on the parameters and the length (10_s4)
  +pointwise     kernel-size-1 convolutions as matrix products (PyTorch's CPU conv path is slow for them),
                 including the audio-free part of the 1x1 skip of each level's first ResBlock (bias pre-added)
  +audio_once    the audio-only part of each level's first ResBlock computed once per song, and the
                 guided batch's doubled prompt/audio built once
  +attention     relative tables gathered once per length, attention in cache-sized chunks
                 (the prompt_kv stage of earlier versions, the keys/values of the prompt memoised, is gone:
                 the fold below supersedes it)
  +in_place      residual additions, GEGLU and SiLU in place on fresh tensors (less memory)
  +inference     torch.inference_mode instead of no_grad
  +halves        guidance only: the cond and uncond halves share every layer before the first cross-attention
                 (`FastUNet(..., halves=True)`, used by the samplers; the level-0 blocks run once, not twice)
  +winograd      the U-Net's kernel-3 convolutions at 128+ channels with Winograd's F(4,3)
                 (`winograd`): 6 multiplications per 4 outputs (per input/output channel pair) instead
                 of 12, as 6 matrix products; the step's work drops from 20.9 to 17.4 GFLOP. Their weights,
                 transformed once, take twice the memory of the originals (+0.26 GB for the full U-Net)
  +packed        every Linear and 1x1 convolution of the U-Net and the Winograd products multiply with weights
                 re-ordered once into oneDNN's blocked layout (`packed`; `torch.ops.mkldnn`, checked at
                 first use, with the plain path as fallback): MKL's sgemm runs these few-row products at 50-90
                 GFLOP/s on this machine's AMD cores, oneDNN with packed weights at 90-105
  +fold          the prompt's keys and values folded into each cross-attention's query and output projections
                 (`fold`): per head, scores = x (W_q^T K^T) and output
                 = A (V W_o^T), two products with heads x 21 = 168 columns instead of to_q and to_out (C x C)
                 and no head transposes; the 16 cross-attentions of a guided step take 14 ms instead of 32 ms
  +frozen        (opt-in, --frozen) the U-Net traced with TorchScript for this song's conditions and frozen
                 (`torch.jit.trace` + `torch.jit.freeze`): same numbers, less interpreter overhead, but a
                 one-off cost of seconds per song (printed), so it pays off only for long runs
  --compile      (opt-in) `torch.compile(unet, dynamic=False)` (inductor): measured for the record; the caches'
                 Python checks make dynamo break the graph and recompile, so it is slower than eager here
Every stage's output is compared with the baseline's (the compat numbers must not change).
The script also counts the floating-point work of one step (torch.utils.flop_counter) and times a matrix
product of the model's typical size: the ratio of the two is the fastest a float32 step can be on this
machine at this thread count, whatever the overhead removed.
The original code needs 0.515 s (no guidance) and 0.917 s (guidance 1:1 batch doubling) per step on
the reference machines. Both wall-clock and process CPU time are printed (median over --reps interleaved
runs); on a shared machine the CPU time is the steadier figure.
--original DIR times the original MuG Diffusion U-Net itself, from a checkout of its public repository
(github.com/Keytoyze/Mug-Diffusion; nothing of it is copied here), in this process, with our weights loaded into
it, on the same inputs: the like-for-like baseline. It needs the original's own `opt_einsum` and `omegaconf`
(pip-install them by hand; the package does not depend on them); PyTorch Lightning, which its S4 file imports
for one decorator, is stubbed when absent. Steps run back to back, as a sampler runs them (interleaving the two
models' steps costs each ~25% in cache misses), and the guided step doubles the batch as its DDIM sampler does.
--conv-table times only nn.Conv1d against Winograd F(2,3) and F(4,3) for the U-Net's kernel-3 layer shapes,
with more distinct layers than fit in the L3 cache (in a step every weight comes from memory once).

Measured (2 shared cores, a training job on the other, 1 thread, --reps 5 --no-song; CPU time):
  +halves      0.367 / 0.639 s per step (no guidance / guidance)
  +winograd    0.342 / 0.606 s per step: 1.51x / 1.51x the original's 0.515 / 0.917 s; max|diff| 4.8e-06
  floor        17.4 GFLOP per unguided step at ~90 GFLOP/s: >= 0.194 / 0.388 s, i.e. at most 2.66x / 2.36x
Measured with both cores (--threads 2 --reps 3 --no-song, nothing else running; wall time):
  baseline     0.268 / 0.418 s per step: the original's code itself gains ~1.9x from the second core
  +winograd    0.207 / 0.338 s per step: 2.49x / 2.71x the quoted 0.515 / 0.917 s, but 1.30x / 1.24x the
               same-process baseline, which is the like-for-like figure (the quoted times match 1 thread)
Winograd saves half of those layers' multiplications but only 5-7% of a step: per layer (--conv-table) F(4,3)
runs 0.96-1.28x as fast as nn.Conv1d (oneDNN) at 128+ channels and 0.7-0.8x at 16 channels; its 6 matrix
products have B*L/4 rows (16 at length 64) and read twice the weights, so they run well below the matrix
unit's rate, and the tile transforms cost ~10% more. F(2,3) gains less (0.86-1.27x), F(6,3) more rounding
and thinner products. An earlier try of the prompt fold (now +fold) measured within the noise (0.99x / 0.96x);
redone without per-head transposes and on top of +packed, interleaved A/B runs give 1.01-1.03x / 1.03-1.06x
(1 and 2 threads). The 2.5x goal is out of reach of float32 on one thread
here: the floor above allows 2.66x / 2.36x only at 100% of the matrix-product rate for every operation.
Against the original's own code (--original, its repository at commit c2903d4, same process, our weights loaded
into it; nothing else running; steps back to back; medians), which agrees with ours within 9.5e-7 / 5.1e-6:
  1 thread     original 0.754 / 1.064 s per step, ours 0.371 / 0.589 s: 2.03x / 1.81x   (through +winograd)
  2 threads    original 0.434 / 0.746 s per step (wall), ours 0.270 / 0.412 s: 1.60x / 1.81x
With +packed (1 thread, --reps 5 --no-song --original, nothing else running; three runs on one day):
  stages       +winograd 0.413 / 0.586 s, +packed 0.294 / 0.521 s per step (CPU time, one run; ~10% noise per stage)
  original     0.747 / 1.109 s per step, ours 0.308 / 0.540 s: 2.43x / 2.05x; other runs 2.48x / 2.05x and, on a
               slower hour of this shared host, 1.89x / 1.94x
  floor        with oneDNN's ~105 GFLOP/s: 17.4 GFLOP per step >= 0.166 s. About 2/3 of a step is now packed matrix
               products at 80-100 GFLOP/s; the rest is ~1,500 small operations (copies, norms, softmax, GELU, FFTs)
               that the model's layout needs. Guidance doubles everything after the first cross-attention, and
               the original's guided step costs only 1.4x its plain one because its 0.35 s of S4 kernels does not
               double: so 2.5x with guidance (0.43 s) would need ~80% of the core's peak over the whole step.
  2 threads    one noisy run: original 0.612 / 0.786 s, ours 0.292 / 0.418 s: 2.09x / 1.88x. The two halves of a
               guided step in two Python threads (one core each) take 0.40 s, against 0.43 s for the batched step
               on two intra-op threads: not adopted.
With +fold (1 thread, --reps 5 --no-song --original; a slow hour of this host, every stage ~7% slower):
  stages       +packed 0.350 / 0.554 s, +fold 0.338 / 0.543 s per step (CPU time)
  original     0.764 / 1.181 s per step, ours 0.330 / 0.551 s: 2.31x / 2.14x; another run (original alone
               against ours, still slower): 0.878 / 1.290 s against 0.351 / 0.608 s, 2.50x / 2.12x
  2 threads    before +fold: original 0.465 / 0.665 s, ours 0.198 / 0.341 s per step (wall): 2.35x / 1.95x;
               with it, on the slow hour: 0.546 / 0.760 s against 0.255 / 0.363 s, 2.14x / 2.09x
Every stage runs the attention in cache-sized chunks of queries (2^17 weights without gradients, 09_encoders):
identical numbers, ~3% off a step against the former 2^24 in an interleaved A/B.
Tried with +packed and not adopted (no gain measured): GELU fused into the GEGLU product as a oneDNN post-op;
the residual addition fused into the output products; tracing + freezing (TorchScript cannot trace the packed
ops, so tracing takes the plain path and lands where eager +packed already is); with +fold: the feed-forward in
row chunks (0.9-1.05x), the GEGLU's value and gate as two products (+/-0.5 ms per block), the Winograd tile
transforms as a strided depthwise convolution or an einsum (slower), or compiled by inductor around the eager
packed products (0.95-1.11x per layer; inductor cannot lower the packed products themselves without freezing).
Through optimize_for_inference (the reference model rewritten by mug_nb.fast; 1 thread, a busy hour of this host):
  A/B          the previous build (the same rewrites made by class swaps in build_model) against
               optimize_for_inference, same process, interleaved, 16 steps each: 0.483 / 0.758 s against 0.474 /
               0.757 s per step (cpu; ratio 0.98 / 1.00); both within 4.8e-6 of the reference model's eps
  original     --original --no-stages --steps 10 --reps 2: the original's U-Net 0.724 / 1.192 s per step, ours 0.336 /
               0.630 s (cpu): 2.15x / 1.89x; max|ours - original| 1.1e-6 / 5.7e-6
  whole        the original's whole sampler as its web UI calls it (DDIMSampler.sample, scale 5, its own no_grad),
  sampler      against ddim_sample on a freshly optimized model, 10 guided steps, each from a fresh model: 11.51 s
               against 7.47 s, 1.54x. The difference from the U-Net-only 1.89x is our first step: 1.81 s instead of
               0.63 s, because everything the rewrites prepare is prepared then (oneDNN weight packing and the Winograd
               transforms once per model, the audio constants once per song, the S4 kernels once per length; the
               original recomputes its S4 kernels at every step instead, so its first step costs no more than the
               rest). Without the first step the whole sampler is 1.83x; at the web UI's 50 steps about 1.75x.
The original's code is slower than our baseline stage (0.433 s at 1 thread in the same run): its 16 S4 kernels
take 0.35 s of its 0.74 s step, computed at every call with a dense Cauchy sum over all N x L pairs. Run to run
the figures move by ~10% on this shared machine, so compare ratios from one run.
"""
import argparse
import importlib.util
import statistics
import time

import torch

import copy

from mug_nb.model import Config, build_model
from mug_nb.s4 import SSKernelNPLR
from mug_nb.diffusion import _guided_eps, _double
import mug_nb.fast as fast_mod
from mug_nb.fast import optimize_for_inference, REWRITES, onednn_packing, winograd_weight, winograd_conv1d


def perturb(model, seed=0):
    "Give zero-initialised weights random values so outputs are non-trivial (timing is unaffected)."
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.abs().sum() == 0:
                fan = p[0].numel() if p.ndim > 1 else 1
                p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) / fan ** 0.5)


def timed(fn, reps):
    fn()                                                     # warm-up (S4 set-up, caches)
    wall, cpu, out = [], [], None
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall.append(time.perf_counter() - t0); cpu.append(time.process_time() - c0)
    return min(wall), min(cpu), out                          # minimum: least disturbed by other processes


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--config", default="full", choices=["full", "tiny"])
    ap.add_argument("--cfg-scale", type=float, default=5.0)
    ap.add_argument("--steps", type=int, default=None, help="DDIM steps of the whole-song run (default 50 tiny, 2 full)")
    ap.add_argument("--frozen", action="store_true", help="also time the traced + frozen U-Net (one-off cost per song)")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile of the U-Net (minutes of compiling)")
    ap.add_argument("--no-song", action="store_true", help="skip the whole-song run")
    ap.add_argument("--no-stages", action="store_true", help="skip the per-stage table (with --original: only the comparisons)")
    ap.add_argument("--conv-table", action="store_true", help="only time Conv1d against Winograd F(2,3)/F(4,3) per layer shape")
    ap.add_argument("--original", metavar="DIR", help="also time the original's U-Net from a checkout of Keytoyze/Mug-Diffusion")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    global has_onednn
    has_onednn = onednn_packing()
    a.steps = a.steps or (50 if a.config == "tiny" else 2)
    if a.conv_table: return conv_table()
    torch.manual_seed(0)
    t0 = time.perf_counter()
    reference = build_model(Config.full() if a.config == "full" else Config.tiny()).eval()
    perturb(reference)
    print(f"built {a.config} model in {time.perf_counter() - t0:.1f} s; threads={a.threads}, reps={a.reps}")
    L = 512
    with torch.inference_mode():
        mel = torch.rand(1, 128, L * 64)
        t0 = time.perf_counter(); w = reference.model.wave_model(mel); tw = time.perf_counter() - t0
        ids = torch.randint(0, reference.model.cond_stage_model.embedding.num_embeddings, (1, 21))
        c = reference.model.cond_stage_model(ids)
        uc = reference.model.cond_stage_model(torch.zeros_like(ids))
    print(f"audio encoder on mel 128 x {L * 64}: {tw:.2f} s (once per song)")
    x = torch.randn(1, 16, L, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([501])

    def stage(s4_cache, rewrites, inference):
        "The reference model rewritten with `rewrites` (a fresh copy), and its plain and guided step."
        SSKernelNPLR.cache_enabled = s4_cache
        fast_mod._ONEDNN[:] = ["packed" in rewrites and has_onednn]   # oneDNN products (Linear and Winograd) on/off
        model = optimize_for_inference(copy.deepcopy(reference), rewrites=rewrites)
        for m in model.modules():
            if isinstance(m, SSKernelNPLR): m._cache.clear()
        eps_fn, ctx = model.model, torch.inference_mode if inference else torch.no_grad
        doubled = _double(c, w, uc) if "audio_once" in rewrites else None

        def plain():
            with ctx(): return eps_fn(x, t, c, w)

        def guided():
            with ctx(): return _guided_eps(eps_fn, x, t, c, w, a.cfg_scale, uc, doubled)
        return plain, guided

    order = ("pointwise", "audio_once", "attention", "in_place", "inference", "halves", "winograd", "packed", "fold")
    stages = [("baseline", (False, (), False)), ("+s4_cache", (True, (), False))]
    for i, name in enumerate(order):
        chosen = [r for r in order[:i + 1] if r in REWRITES]
        stages.append(("+" + name, (True, tuple(chosen), i >= order.index("inference"))))
    assert set(stages[-1][1][1]) == set(REWRITES)               # the last stage is optimize_for_inference(model)
    if a.no_stages: stages = []
    runs = {name: [] for name, _ in stages}
    outs = {}
    for r in range(a.reps):                                  # interleaved, so load changes hit every stage alike
        for name, flags in stages:
            plain, guided = stage(*flags)
            w1, c1, o1 = timed(plain, 1)
            w2, c2, o2 = timed(guided, 1)
            runs[name].append((w1, c1, w2, c2))
            outs[name] = (o1.clone(), o2.clone())
            del plain, guided
    ref = outs.get("baseline")
    rows = []
    for name, _ in stages:
        w1, c1, w2, c2 = (statistics.median(col) for col in zip(*runs[name]))   # medians of interleaved runs
        o1, o2 = outs[name]
        d = max((o1 - ref[0]).abs().max().item(), (o2 - ref[1]).abs().max().item())
        rows.append((name, w1, c1, w2, c2, d))
        print(f"{name:12s} no guidance {w1:6.3f} s/step (cpu {c1:6.3f})   guidance {w2:6.3f} s/step (cpu {c2:6.3f})"
              f"   max|diff vs baseline| {d:.1e}"
              + (f"   cpu vs original 0.515/0.917 s: {0.515 / c1:.2f}x / {0.917 / c2:.2f}x" if a.config == "full" else ""), flush=True)
    SSKernelNPLR.cache_enabled = True
    fast_mod._ONEDNN[:] = [has_onednn]
    model = optimize_for_inference(reference)                # from here on: the model as generation runs it
    unet, eps_fn = model.model.unet_model, model.model
    b, f = (rows[0], rows[-1]) if rows else (None, None)
    if rows: print(f"before -> after (cpu, median): no guidance {b[2]:.3f} -> {f[2]:.3f} s/step, guidance {b[4]:.3f} -> {f[4]:.3f} s/step")
    if rows: print(f"speed-up (wall): no guidance {b[1] / f[1]:.2f}x, guidance {b[3] / f[3]:.2f}x;"
          f" (cpu): {b[2] / f[2]:.2f}x, {b[4] / f[4]:.2f}x")
    if rows and a.config == "full": print(f"CPU time vs the original's reference 0.515 / 0.917 s per step: {0.515 / f[2]:.2f}x / {0.917 / f[4]:.2f}x "
          f"(the reference was measured elsewhere; indicative only)")
    assert max((r[-1] for r in rows), default=0) < 1e-4, "an optimisation changed the numbers"
    if rows: floor(eps_fn, x, t, c, w, b, f, a)
    if a.original:
        original_stage(a.original, model, x, t, c, w, uc, a)
        original_sampler_stage(a.original, model, c, w, uc, a)
    if a.frozen: frozen_stage(unet, x, t, c, w, uc, a, b, f, outs["baseline"])
    if a.compile: compiled_stage(unet, x, t, c, w, b, f, outs["baseline"])
    if a.no_song: return
    # a whole song as the generator runs it: audio encoder once, 4 variants x `--steps` guided DDIM steps
    from mug_nb.diffusion import ddim_sample
    with torch.inference_mode():
        t0, c0 = time.perf_counter(), time.process_time()
        w = model.model.wave_model(mel)
        ids4 = ids.expand(4, -1)
        z = ddim_sample(model, (4, 16, L), model.model.cond_stage_model(ids4), [x.expand(4, -1, -1) for x in w],
                        a.steps, cfg_scale=a.cfg_scale, uc=model.model.cond_stage_model(torch.zeros_like(ids4)))
    print(f"song (mel 128 x {L * 64}, 4 variants x {a.steps} guided steps): {time.perf_counter() - t0:.2f} s "
          f"(cpu {time.process_time() - c0:.2f} s)")



def conv_table():
    "Conv1d against Winograd F(2,3) / F(4,3) for the U-Net's kernel-3 layer shapes, with cold weights as in the model."
    def best(fns, reps=5):                                   # seconds per layer; best of `reps` passes over the layers
        for f in fns: f()
        out = []
        for _ in range(reps):
            c0 = time.process_time()
            for f in fns: f()
            out.append((time.process_time() - c0) / len(fns))
        return min(out)
    print(f"threads={torch.get_num_threads()}; per layer, K distinct layers of a shape in turn (64 MB of weights, "
          f"more than the L3 cache), best of 3 x 5\n{'C_in':>5} {'C_out':>5} {'L':>4} {'B':>2} | {'conv1d ms':>9} | "
          f"{'F(2,3) ms':>9} {'x':>5} | {'F(4,3) ms':>9} {'x':>5} | max rel. diff F(4,3)")
    with torch.inference_mode():
        for C, O, L in [(512, 512, 64), (384, 384, 128), (256, 256, 256), (128, 128, 512), (1024, 512, 64),
                        (768, 384, 128), (512, 256, 256), (256, 128, 512), (128, 16, 512)]:
            convs = [torch.nn.Conv1d(C, O, 3, padding=1) for _ in range(min(400, max(4, int(64e6 // (C * O * 12)))))]
            U = {m: [winograd_weight(c.weight, m) for c in convs] for m in (2, 4)}
            for B in (1, 2):
                x = torch.randn(B, C, L)
                ref = convs[0](x)
                e = ((winograd_conv1d(x, U[4][0], convs[0].bias) - ref).abs().max() / ref.abs().max()).item()
                runs = [(best([lambda c=c: c(x) for c in convs]),
                         *(best([lambda u=u, c=c: winograd_conv1d(x, u, c.bias) for u, c in zip(U[m], convs)]) for m in (2, 4)))
                        for _ in range(3)]                   # interleaved
                t0, t2, t4 = (min(col) for col in zip(*runs))
                print(f"{C:5d} {O:5d} {L:4d} {B:2d} | {t0 * 1e3:9.3f} | {t2 * 1e3:9.3f} {t0 / t2:4.2f}x | "
                      f"{t4 * 1e3:9.3f} {t0 / t4:4.2f}x | {e:.0e}", flush=True)


def floor(eps_fn, x, t, c, w, b, f, a):
    "Floating-point work of one step, this machine's matrix-product rate, and the fastest step they allow."
    from torch.utils.flop_counter import FlopCounterMode
    fast_mod._ONEDNN[:] = [False]                            # the flop counter does not see oneDNN's ops
    with torch.no_grad():
        eps_fn(x, t, c, w)                                   # the caches are keyed on the grad mode: warm them
        with FlopCounterMode(display=False) as fc: eps_fn(x, t, c, w)
    fast_mod._ONEDNN[:] = [has_onednn]
    gflop = fc.get_total_flops() / 1e9
    m1, m2 = torch.randn(64, 512), torch.randn(512, 512)
    rate = 2 * 64 * 512 * 512 / 1e9 / timed(lambda: [m1 @ m2 for _ in range(20)], 5)[1] * 20   # GFLOP/s, best of 5
    if has_onednn:                                           # the packed oneDNN product, if faster, sets the floor
        from mug_nb.fast import packed_weight, packed_linear
        p2 = packed_weight(m2.T.contiguous())
        with torch.inference_mode():
            rate = max(rate, 2 * 64 * 512 * 512 / 1e9 / timed(lambda: [packed_linear(m1, p2) for _ in range(20)], 5)[1] * 20)
    print(f"work: {gflop:.1f} GFLOP per unguided step; achieved {gflop / f[2]:.0f} GFLOP/s (cpu), baseline "
          f"{gflop / b[2]:.0f}; a 64x512x512 matrix product runs at {rate:.0f} GFLOP/s on this machine "
          f"(the faster of MKL and packed oneDNN)")
    if a.config == "full":
        print(f"  -> no float32 step can take less than ~{gflop / rate:.3f} s here (guided ~{2 * gflop / rate:.3f} s): "
              f"at most {0.515 / (gflop / rate):.2f}x / {0.917 / (2 * gflop / rate):.2f}x the original's 0.515 / 0.917 s")


def load_original_unet(repo, ours):
    "The original's UNetModel, built from its own code and config in `repo`, holding `ours`' weights."
    import sys, types
    from pathlib import Path
    import yaml
    repo = Path(repo)
    cfg_file = repo / "configs" / "mug" / "mug_diffusion.yaml"
    if not (repo / "mug" / "diffusion" / "unet.py").is_file() or not cfg_file.is_file():
        raise SystemExit(f"--original {repo}: not a checkout of Keytoyze/Mug-Diffusion (no mug/diffusion/unet.py "
                         f"or configs/mug/mug_diffusion.yaml)")
    missing = [m for m in ("opt_einsum", "omegaconf") if importlib.util.find_spec(m) is None]
    if missing: raise SystemExit(f"--original needs the original's dependencies {missing}: pip install {' '.join(missing)}")
    if importlib.util.find_spec("pytorch_lightning") is None:        # its S4 file imports one decorator from it
        pl, plu = types.ModuleType("pytorch_lightning"), types.ModuleType("pytorch_lightning.utilities")
        plu.rank_zero_only, pl.utilities = (lambda f: f), plu
        sys.modules.update({"pytorch_lightning": pl, "pytorch_lightning.utilities": plu})
    sys.path.insert(0, str(repo))
    from mug.diffusion.unet import UNetModel as OriginalUNet
    params = yaml.safe_load(cfg_file.read_text())["model"]["params"]["unet_config"]["params"]
    unet = OriginalUNet(**params).eval()
    unet.load_state_dict(ours.state_dict(), strict=True)           # same names and shapes: `full` is the original
    return unet


def original_stage(repo, model, x, t, c, w, uc, a):
    "The original U-Net against ours: same weights, same inputs, steps run back to back; medians of wall/CPU time."
    orig, ours = load_original_unet(repo, model.model.unet_model), model.model
    doubled = _double(c, w, uc)

    def orig_guided():                                             # as its p_sample_ddim: the batch doubled per step
        e_u, e_c = orig(torch.cat([x] * 2), torch.cat([t] * 2), torch.cat([uc, c]),
                        *[torch.cat([wi] * 2) for wi in w]).chunk(2)
        return e_u + a.cfg_scale * (e_c - e_u)
    fns = {"original": (lambda: orig(x, t, c, *w), orig_guided),
           "ours": (lambda: ours(x, t, c, w), lambda: _guided_eps(ours, x, t, c, w, a.cfg_scale, uc, doubled))}
    times = {(k, g): [] for k in fns for g in (0, 1)}
    outs = {}
    for r in range(a.reps + 1):                                    # the first round warms up and is not counted
        for g in (0, 1):
            for k, pair in fns.items():
                ctx = torch.no_grad if k == "original" else torch.inference_mode   # as each sampler runs
                with ctx():
                    for _ in range(4):                             # back to back, as a sampler runs them
                        t0, c0 = time.perf_counter(), time.process_time(); out = pair[g]()
                        if r: times[(k, g)].append((time.perf_counter() - t0, time.process_time() - c0))
                outs[(k, g)] = out.clone()
    d = [(outs[("ours", g)] - outs[("original", g)]).abs().max().item() for g in (0, 1)]
    m = {key: [statistics.median(col) for col in zip(*v)] for key, v in times.items()}   # [wall, cpu]
    for k in fns:
        print(f"{k:12s} no guidance {m[(k, 0)][0]:6.3f} s/step (cpu {m[(k, 0)][1]:6.3f})   guidance {m[(k, 1)][0]:6.3f} "
              f"s/step (cpu {m[(k, 1)][1]:6.3f})" + (f"   (its own code, {repo})" if k == "original" else
              f"   max|ours - original| {d[0]:.1e} / {d[1]:.1e}"))
    r = lambda g, i: m[("original", g)][i] / m[("ours", g)][i]
    print(f"  speed-up over the original code, same process, threads={a.threads}: no guidance {r(0, 0):.2f}x, "
          f"guidance {r(1, 0):.2f}x (wall); {r(0, 1):.2f}x, {r(1, 1):.2f}x (cpu)")
    assert max(d) < 1e-4, "our compat U-Net disagrees with the original's code"


def original_sampler_stage(repo, model, c, w, uc, a):
    """The original's whole DDIM sampler as its web UI calls it (`DDIMSampler.sample(S, c, w, batch_size, shape=None,
    unconditional_guidance_scale, unconditional_conditioning, eta=0)`, under its own no_grad) against ours
    (`ddim_sample` on the optimized model, under inference_mode), each from a freshly loaded model, so that every
    one-off cost (our weight packing, Winograd transforms, audio constants and prompt fold; the S4 set-up of both)
    is inside the time, as it is for a user. `--steps` steps; interleaved runs, medians."""
    import types
    from mug_nb.diffusion import ddim_sample
    load_original_unet(repo, model.model.unet_model)               # checks the folder, sets up the imports
    from mug.diffusion.ddim import DDIMSampler

    class Silent:                                                   # the web UI passes its own progress bar
        def __init__(self, it, **kw): self.it = it
        def __iter__(self): return iter(self.it)

    class OriginalDDPM(torch.nn.Module):                            # what DDIMSampler reads of the original's DDPM
        def __init__(self, unet, ours):
            super().__init__()
            for k in ("betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_one_minus_alphas_cumprod"):
                self.register_buffer(k, getattr(ours, k).clone())
            self.num_timesteps, self.z_channels, self.z_length = ours.num_timesteps, 16, 512
            self.device = torch.device("cpu")
            self.model = types.SimpleNamespace(forward=lambda x, t, cc, ww: unet(x, t, cc, *ww))
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    x_T = torch.randn(1, 16, 512, generator=torch.Generator().manual_seed(3))
    times, outs, first = {"original": [], "ours": []}, {}, []
    for r in range(a.reps):
        for k in ("original", "ours"):
            if k == "original":                                     # a fresh model: its S4 kernels as loaded
                unet = load_original_unet(repo, model.model.unet_model)
                sampler = DDIMSampler(OriginalDDPM(unet, model))
                run = lambda: sampler.sample(S=a.steps, c=c, w=w, batch_size=1, shape=None, verbose=False, eta=0.0,
                                             unconditional_guidance_scale=a.cfg_scale, unconditional_conditioning=uc,
                                             x_T=x_T, tqdm_class=Silent)[0]
            else:                                                   # a fresh optimized model: every cache cold
                fresh = build_model(model.config); fresh.load_state_dict(sd); fresh = optimize_for_inference(fresh)
                steps_t = []
                def cb(i, *_): steps_t.append(time.process_time())
                def run():
                    with torch.inference_mode():
                        return ddim_sample(fresh, (1, 16, 512), c, w, a.steps, cfg_scale=a.cfg_scale, uc=uc, x_T=x_T,
                                           callback=cb)
            c0 = time.process_time(); outs[k] = run(); times[k].append(time.process_time() - c0)
            if k == "ours": first.append((steps_t[0] - c0, (steps_t[-1] - steps_t[0]) / max(1, len(steps_t) - 1)))
    o, u = statistics.median(times["original"]), statistics.median(times["ours"])
    f1, per = (statistics.median(col) for col in zip(*first))
    d = ((outs["ours"] - outs["original"]).abs().max() / outs["original"].abs().max()).item()
    print(f"whole sampler, {a.steps} guided steps (scale {a.cfg_scale}), fresh models, cpu: original {o:.2f} s, ours {u:.2f} s: "
          f"{o / u:.2f}x; max rel. diff {d:.1e}")
    print(f"  ours: first step {f1:.2f} s (weight packing, Winograd transforms, audio constants, fold, S4 kernels), "
          f"then {per:.3f} s per step; without the first step: {(o - o / a.steps) / (u - f1):.2f}x")
    assert d < 1e-4, "our sampler disagrees with the original's"


def frozen_stage(unet, x, t, c, w, uc, a, b, f, ref):
    "Opt-in: the U-Net traced for this song's prompt and audio (its caches become constants) and frozen."
    from mug_nb.diffusion import _double

    class Bound(torch.nn.Module):
        def __init__(self, c, w): super().__init__(); self.unet, self.c, self.w = unet, c, list(w)
        def forward(self, x, t): return self.unet(x, t, self.c, *self.w)
    res = []
    for cc, ww, xx, tt in ((c, w, x, t), (*_double(c, w, uc), torch.cat([x, x]), torch.cat([t, t]))):
        with torch.inference_mode():
            unet(xx, tt, cc, *ww)                           # warm the caches, so the trace bakes them in
            t0 = time.perf_counter()
            fr = torch.jit.freeze(torch.jit.trace(Bound(cc, ww).eval(), (xx, tt), check_trace=False))
            fr(xx, tt); fr(xx, tt)                           # TorchScript's two profiling runs
            one_off = time.perf_counter() - t0
            out = fr(xx, tt)
            eager, froz = [], []
            for _ in range(max(a.reps, 3)):                  # interleaved with the eager U-Net; medians
                for fn, acc in ((lambda: unet(xx, tt, cc, *ww), eager), (lambda: fr(xx, tt), froz)):
                    c0 = time.process_time(); fn(); acc.append(time.process_time() - c0)
            res.append((statistics.median(eager), statistics.median(froz), one_off, out))
    (e1, c1, o1, out1), (e2_, c2, o2, out2) = res
    e2 = out2.chunk(2); e2 = e2[0] + a.cfg_scale * (e2[1] - e2[0])
    d = max((out1 - ref[0]).abs().max().item(), (e2 - ref[1]).abs().max().item())
    print(f"{'+frozen':12s} no guidance cpu {c1:6.3f} s/step (eager {e1:6.3f})   guidance cpu {c2:6.3f} s/step "
          f"(eager {e2_:6.3f})   max|diff vs baseline| {d:.1e}   one-off {o1:.1f} s / {o2:.1f} s per song")
    print(f"  frozen vs eager U-Net (interleaved medians, cpu): {e1 / c1:.2f}x / {e2_ / c2:.2f}x; break-even after "
          f"{o1 / max(e1 - c1, 1e-9):.0f} / {o2 / max(e2_ - c2, 1e-9):.0f} steps"
          + (f"; vs the original's 0.515 / 0.917 s: {0.515 / c1:.2f}x / {0.917 / c2:.2f}x" if a.config == "full" else ""))
    assert d < 1e-4, "freezing changed the numbers"


def compiled_stage(unet, x, t, c, w, b, f, ref):
    "Opt-in: torch.compile of the U-Net forward at the sampling shape (no guidance), against the eager U-Net."
    with torch.inference_mode():
        cm = torch.compile(unet, dynamic=False)
        t0 = time.perf_counter(); cm(x, t, c, *w); one_off = time.perf_counter() - t0
        out = cm(x, t, c, *w)
        eager, comp = [], []
        for _ in range(5):                                   # interleaved; medians
            for fn, acc in ((lambda: unet(x, t, c, *w), eager), (lambda: cm(x, t, c, *w), comp)):
                c0 = time.process_time(); fn(); acc.append(time.process_time() - c0)
    d = (out - ref[0]).abs().max().item()
    e, k = statistics.median(eager), statistics.median(comp)
    print(f"{'+compile':12s} no guidance cpu {k:6.3f} s/step (eager {e:6.3f})   max|diff vs baseline| {d:.1e}   "
          f"first call {one_off:.0f} s; compiled vs eager U-Net {e / k:.2f}x")

if __name__ == "__main__":
    main()
