"""Seconds per training step of the tiny VAE and of the tiny latent-diffusion model, against the 1 s goal.

    OMP_NUM_THREADS=1 python benchmarks/bench_train_step.py [--threads N] [--repeat R] [--frames T]

One step = forward + loss + backward + optimizer step, with the loss functions the trainer calls
(`mug_nb.vae.vae_loss` and `mug_nb.train.latent_diffusion_loss`). Shapes (the goal's):
* tiny VAE (`Config.tiny().vae`, 330,016 parameters; `--vae-width 32` for the bundled one's): a batch of 4 note arrays 16 x T (T = 4096 note frames,
  a 190 s song), Adam, sampled posterior + KL.
* tiny diffusion (`build_model(Config.tiny())`, VAE frozen): a batch of 2 songs of T note frames and 8T mel
  frames (128 x 32768), AdamW, prompt dropout, epsilon-prediction smooth-L1 loss.
The figure is the best of R timed steps after one warm-up step. Nothing is asserted: the script prints.
"""
import argparse
import time

import torch

from mug_nb.model import Config, build_model
from mug_nb.train import StageConfig, latent_diffusion_loss, missing_ids
from mug_nb.vae import ManiaReconstructLoss, vae_loss

GOAL_S = 1.0


def timed_steps(step, repeat: int) -> list[float]:
    "Wall-clock seconds of `repeat` calls of `step`, after one warm-up call."
    step()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return times


def note_batch(B: int, T: int, g: torch.Generator) -> torch.Tensor:
    "Chart-like note arrays (B, 16, T): ~5% heads, offsets, ~30% holding, end offsets."
    heads = (torch.rand(B, 4, T, generator=g) < 0.05).float()
    return torch.cat([heads, torch.rand(B, 4, T, generator=g) * heads, (torch.rand(B, 4, T, generator=g) < 0.3).float(),
                      torch.rand(B, 4, T, generator=g)], 1)


def report(name: str, times: list[float], loss: float) -> None:
    best = min(times)
    verdict = "meets" if best < GOAL_S else "MISSES"
    print(f"{name:<50s} best {best:6.3f} s  median {sorted(times)[len(times) // 2]:6.3f} s  "
          f"loss {loss:8.4f}  -> {verdict} the {GOAL_S:g} s goal")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--frames", type=int, default=4096, help="note frames per song (mel frames = 8x)")
    ap.add_argument("--vae-batch", type=int, default=4)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--vae-width", type=int, default=None,
                    help="VAE middle_channels (default: Config.tiny()'s 16; the bundled model uses 32)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    cfg = Config.tiny()
    if a.vae_width: cfg.vae.middle_channels = a.vae_width
    model = build_model(cfg)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU, float32; "
          f"best/median of {a.repeat} steps after 1 warm-up")

    vae, crit = model.model.first_stage_model, ManiaReconstructLoss()
    vae.train().requires_grad_(True)
    vopt = torch.optim.Adam(vae.parameters(), lr=1e-3)
    vb = {"note": note_batch(a.vae_batch, a.frames, g), "valid_flag": torch.ones(a.vae_batch, a.frames)}
    last = {}

    def vae_step():
        loss, _ = vae_loss(vae, crit, vb["note"], vb["valid_flag"], kl_weight=cfg.vae.kl_weight)
        vopt.zero_grad(set_to_none=True); loss.backward(); vopt.step()
        last["vae"] = loss.item()
    n_vae = sum(p.numel() for p in vae.parameters())
    report(f"tiny VAE ({n_vae:,} p), {a.vae_batch} x 16 x {a.frames}", timed_steps(vae_step, a.repeat), last["vae"])

    vae.eval().requires_grad_(False)          # stage 2: the VAE is frozen, as in training
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    dopt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01)
    sc, miss = StageConfig(prompt_dropout_p=0.5, uncond_p=0.1), missing_ids(cfg)
    n_ids = cfg.prompt.num_embeddings
    db = {"note": note_batch(a.batch, a.frames, g), "audio": torch.rand(a.batch, 128, 8 * a.frames, generator=g) * 4,
          "feature": torch.randint(0, n_ids, (a.batch, 21), generator=g)}

    def diffusion_step():
        loss = latent_diffusion_loss(model, db, sc, miss)
        dopt.zero_grad(set_to_none=True); loss.backward(); dopt.step()
        last["diff"] = loss.item()
    n_diff = sum(p.numel() for p in params)
    report(f"tiny diffusion ({n_diff:,} trained p), {a.batch} songs x {a.frames}", timed_steps(diffusion_step, a.repeat),
           last["diff"])


if __name__ == "__main__":
    main()
