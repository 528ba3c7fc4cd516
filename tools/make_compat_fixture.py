"""Make the compatibility fixture of `tests/compat` by running the ORIGINAL MuG Diffusion code on a reduced config.

    python tools/make_compat_fixture.py --original /path/to/Mug-Diffusion [--out tests/compat]

`--original` is a checkout of https://github.com/Keytoyze/Mug-Diffusion (the fixture was made at c2903d4), run in a
Python that has its dependencies (torch, pytorch_lightning, omegaconf, opt_einsum, einops, librosa, soundfile,
audioread, tqdm, yaml). Nothing of the original is copied here or into the fixture: this script imports it from the
checkout, builds the model of `OUT/config.yaml` with it and writes what it computes, as numbers only:

* `model.safetensors`: the state dict (the original's key names) after one set-up forward (see README.md).
  Weights are rounded to float16 *before* anything is computed, so they are stored as float16 without loss;
  tensors that are not exactly float16 (S4 kernel parameters, schedules) stay float32.
* `golden.safetensors`: inputs (float16 where exact, else float32) and the original's outputs (float32); a list
  output is stored as `name.0`, `name.1`, ...; scalars, prompts and provenance are in the metadata (`"meta"`, JSON).
* `original_state_dict_keys.txt.gz`: `name<TAB>[shape]` of every state-dict entry of the released model's config
  (`configs/mug/mug_diffusion.yaml`, built by the original), gzip without a time stamp.

Everything runs on CPU, float32, one thread, `eval()`, in the order documented in README.md (the original's S4
layers change their state the first time they see a longer sequence, so the order matters).
"""
import argparse
import hashlib
import json
import math
import os
import platform
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "tests" / "compat"

PROMPTS = [  # the three prompts of the first fixture (empty, typical, colliding ids) and a category/bool mix
    {},
    {"sr": 3.5, "ln_ratio": 0.2, "rank_status": "ranked", "rc": 1, "ett": 20, "technical": True, "technical_ett": 24,
     "handstream": False, "jumpstream_ett": 16.5},
    {"sr": 8, "ln_ratio": 1, "ett": 35, "rank_status": "graveyard", "ln": 1, "stamina": True},
    {"sr": 1.2, "ln_ratio": 0.55, "rank_status": "loved", "hb": 1, "chordjack": True, "chordjack_ett": 22.5},
]
SEED_INIT, SEED_PERTURB = 100, 101
LATENT, SETUP_LATENT, LONG_LATENT = 32, 16, 160      # U-Net lengths: golden calls, set-up pass, long call
MEL_PER_LATENT = 64                                   # wave level 6 (the U-Net's first audio) has 1/64 of the mel frames
DDIM_S, DDIM_ETA, CFG, UNGUIDED_S = 10, 0.0, 4.0, 5
LOSS_ARGS = (0.5, 0.5, 0.2, 0.001)     # ManiaReconstructLoss(weight_start_offset, weight_holding, weight_end_offset, label_smoothing)
INPUTS = ("wave_in", "unet_x", "vae_note_in", "vae_z", "ddim_x_T", "long_x")   # stored as float16 (exact)


def f16(t):
    "Round to the nearest float16 value, kept as float32 (so the number is stored losslessly as float16)."
    return t.half().float()


def perturb_and_round(model, torch):
    """The original zero-initialises the last layer of every residual branch (eps would be exactly 0) and sets norms
    to one: give such tensors random values, then round every parameter outside the S4 kernels to float16."""
    g = torch.Generator().manual_seed(SEED_PERTURB)
    counts = {"zero->random": 0, "one->1+0.1N": 0, "rounded": 0}
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".s4_model.kernel." in name:
                continue
            if (p == 0).all():
                if p.ndim >= 2:
                    b = 1 / math.sqrt(p.numel() / p.shape[0])
                    p.copy_(torch.rand(p.shape, generator=g) * 2 * b - b)
                else:
                    p.copy_(torch.randn(p.shape, generator=g) * 0.05)
                counts["zero->random"] += 1
            elif (p == 1).all():
                p.add_(0.1 * torch.randn(p.shape, generator=g))
                counts["one->1+0.1N"] += 1
            p.copy_(f16(p))
            counts["rounded"] += 1
    return counts


def s4_kernels(model):
    return [(n, m) for n, m in model.named_modules() if type(m).__name__ == "SSKernelNPLR"]


def write_full_keys(out, instantiate_from_config, OmegaConf):
    "The released config's state-dict names and shapes, in the original's order."
    import gzip
    def strip(d): return {k: strip(v) for k, v in d.items() if k != "ckpt_path"} if isinstance(d, dict) else d
    cfg = OmegaConf.create(strip(OmegaConf.to_container(OmegaConf.load("configs/mug/mug_diffusion.yaml").model)))
    model = instantiate_from_config(cfg)
    text = "".join(f"{k}\t{list(v.shape)}\n" for k, v in model.state_dict().items())
    with open(out / "original_state_dict_keys.txt.gz", "wb") as f, gzip.GzipFile("", "wb", 9, f, mtime=0) as z:
        z.write(text.encode())
    return text.count("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--original", required=True, type=Path, help="checkout of Keytoyze/Mug-Diffusion")
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args()
    orig, out = a.original.resolve(), a.out.resolve()
    if not (orig / "mug" / "diffusion" / "unet.py").is_file():
        sys.exit(f"{orig}: not a checkout of Keytoyze/Mug-Diffusion (mug/diffusion/unet.py is missing)")
    os.chdir(orig)                   # the config's path_to_yaml is relative to the original's root, as there
    sys.path.insert(0, str(orig))

    import numpy as np
    import torch
    import yaml
    from omegaconf import OmegaConf
    from safetensors.torch import save_file
    from mug.util import instantiate_from_config, feature_dict_to_embedding_ids
    from mug.diffusion.ddim import DDIMSampler
    from mug.firststage.losses import ManiaReconstructLoss

    torch.set_num_threads(1)
    cfg = OmegaConf.load(out / "config.yaml")
    feat_yaml = orig / "configs" / "mug" / "mania_beatmap_features.yaml"
    fresh = lambda: instantiate_from_config(cfg.model).eval()
    L = lambda ks: torch.stack([k.L.detach().clone().long().reshape(()) for k in ks])

    # ---------------------------------------------------------------- inputs (fp16-exact, fixed generators)
    gen = lambda s: torch.Generator().manual_seed(s)
    G = {}
    G["prompt_ids"] = torch.tensor([feature_dict_to_embedding_ids(p, yaml.safe_load(feat_yaml.read_text()))
                                    for p in PROMPTS], dtype=torch.long)
    n_freq = int(cfg.model.params.wave_stage_config.params.n_freq)
    G["wave_in"] = f16(torch.rand(2, n_freq, LATENT * MEL_PER_LATENT, generator=gen(10)) * 4.0)
    G["unet_x"] = f16(torch.randn(2, 16, LATENT, generator=gen(11)))
    G["unet_t"] = torch.tensor([500, 10])
    g12, T = gen(12), LATENT * 8
    is_start = (torch.rand(2, 4, T, generator=g12) < 0.08).float()
    off_start = torch.rand(2, 4, T, generator=g12) * is_start
    holding = (torch.rand(2, 4, T, generator=g12) < 0.15).float()
    off_end = torch.rand(2, 4, T, generator=g12) * (torch.rand(2, 4, T, generator=g12) < 0.05).float()
    G["vae_note_in"] = f16(torch.cat([is_start, off_start, holding, off_end], 1))
    G["vae_z"] = f16(torch.randn(2, 16, LATENT, generator=gen(13)))
    G["ddim_x_T"] = f16(torch.randn(2, 16, LATENT, generator=gen(15)))
    G["long_x"] = f16(torch.randn(1, 16, LONG_LATENT, generator=gen(16)))
    G["long_t"] = torch.tensor([999])
    G["setup_t"] = torch.tensor([250])

    # ---------------------------------------------------------------- model, perturbation, set-up pass, save
    torch.manual_seed(SEED_INIT)
    model = fresh()
    counts = perturb_and_round(model, torch)
    names = [n for n, _ in s4_kernels(model)]
    with torch.no_grad():
        c_setup = model.model.cond_stage_model(G["prompt_ids"][1:2])
        w_setup = model.model.wave_model(G["wave_in"][:1, :, :SETUP_LATENT * MEL_PER_LATENT])
        setup_eps = model.model(G["unet_x"][:1, :, :SETUP_LATENT], G["setup_t"], c_setup, w_setup)
    sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    stored = {k: (v.half() if v.dtype == torch.float32 and torch.equal(f16(v), v) else v) for k, v in sd.items()}

    # ---------------------------------------------------------------- the recording, on a reloaded model
    model = fresh()
    missing, unexpected = model.load_state_dict(sd, strict=True)
    kernels = [m for _, m in s4_kernels(model)]
    G["s4_L_loaded"] = L(kernels)
    G["setup_eps"] = setup_eps
    with torch.inference_mode():
        G["cond_out"] = model.model.cond_stage_model(G["prompt_ids"])                                       # (a)
        wave_out = model.model.wave_model(G["wave_in"])                                                     # (b)
        G["wave_out"] = wave_out
        setup = lambda: model.model(G["unet_x"][:1, :, :SETUP_LATENT], G["setup_t"], G["cond_out"][1:2],
                                    model.model.wave_model(G["wave_in"][:1, :, :SETUP_LATENT * MEL_PER_LATENT]))
        G["setup_eps_reloaded"] = setup()
        G["unet_context"] = G["cond_out"][1:3].clone()
        G["unet_eps"] = model.model(G["unet_x"], G["unet_t"], G["unet_context"], wave_out)                 # (c)
        G["s4_L_after_c"] = L(kernels)
        G["setup_eps_after_doubling"] = setup()
        post = model.model.first_stage_model.encode(G["vae_note_in"])                                      # (d)
        G["vae_posterior_parameters"], G["vae_mean"], G["vae_logvar"] = post.parameters, post.mean, post.logvar
        G["vae_mode"] = post.mode()
        G["vae_decoded"] = model.model.first_stage_model.decode(G["vae_z"])
        G["ddim_c"] = torch.cat([G["cond_out"][1:2]] * 2)                                                   # (e)
        G["ddim_uc"] = torch.cat([G["cond_out"][0:1]] * 2)
        sampler = DDIMSampler(model)
        quiet = lambda it, **kw: it
        torch.manual_seed(14)
        x, inter = sampler.sample(S=DDIM_S, c=G["ddim_c"], w=wave_out, batch_size=2, shape=(16, LATENT), eta=DDIM_ETA,
                                  x_T=G["ddim_x_T"], verbose=False, log_every_t=1, unconditional_guidance_scale=CFG,
                                  unconditional_conditioning=G["ddim_uc"], tqdm_class=quiet)
        G["ddim_samples"], G["ddim_x_inter"], G["ddim_pred_x0"] = x, inter["x_inter"], inter["pred_x0"]
        G["ddim_decoded"] = model.model.decode(x)
        G["ddim_timesteps"] = torch.as_tensor(np.asarray(sampler.ddim_timesteps, dtype=np.int64))
        G["ddim_alphas"] = torch.as_tensor(sampler.ddim_alphas)
        G["ddim_alphas_prev"] = torch.as_tensor(np.asarray(sampler.ddim_alphas_prev, dtype=np.float64))
        G["ddim_sigmas"] = torch.as_tensor(np.asarray(sampler.ddim_sigmas, dtype=np.float64))
        G["ddim_sqrt_one_minus_alphas"] = torch.as_tensor(np.asarray(sampler.ddim_sqrt_one_minus_alphas))
        torch.manual_seed(14)                                                                               # (e2)
        G["ddim_unguided_samples"] = sampler.sample(S=UNGUIDED_S, c=G["ddim_c"][:1], w=[v[1:] for v in wave_out],
                                                    batch_size=1, shape=(16, LATENT), eta=0.0,
                                                    x_T=G["ddim_x_T"][1:], verbose=False, tqdm_class=quiet)[0]
        for k in ("betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",                  # (f)
                  "sqrt_one_minus_alphas_cumprod"):
            G["ddpm_" + k] = getattr(model, k).detach().clone()
        long_in = torch.cat([G["wave_in"][:1]] * (LONG_LATENT // LATENT), dim=-1)                           # (g)
        G["wave_long_out_last4"] = model.model.wave_model(long_in)[-4:]
        G["long_eps"] = model.model(G["long_x"], G["long_t"], G["cond_out"][2:3], G["wave_long_out_last4"])  # (h)
    G["s4_L_after"] = L(kernels)
    G["s4_C_after"] = [k.C.detach().clone() for k in kernels]
    # (i) the VAE's reconstruction loss and metrics, on a note-like batch and random logits
    g7 = gen(7)
    start = (torch.rand(2, 4, 64, generator=g7) < 0.15).float()
    hold = (torch.rand(2, 4, 64, generator=g7) < 0.3).float()
    G["loss_in"] = torch.cat([start, torch.rand(2, 4, 64, generator=g7) * start, hold, torch.rand(2, 4, 64, generator=g7)], 1)
    G["loss_rec"] = torch.randn(2, 16, 64, generator=g7) * 2
    G["loss_valid"] = torch.ones(2, 64, dtype=torch.float64)
    loss, loss_logs = ManiaReconstructLoss(*LOSS_ARGS)(G["loss_in"], G["loss_rec"], G["loss_valid"])
    G["loss"] = loss.detach().clone()

    # ---------------------------------------------------------------- write
    flat = {}
    for k, v in G.items():
        for i, t in (enumerate(v) if isinstance(v, (list, tuple)) else [(None, v)]):
            t = t.detach().clone().contiguous()
            if k in INPUTS:
                assert torch.equal(f16(t), t), k
                t = t.half()
            flat[k if i is None else f"{k}.{i}"] = t
    sha = lambda p: hashlib.sha256(Path(p).read_bytes()).hexdigest()
    commit = subprocess.run(["git", "-C", str(orig), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    import einops, opt_einsum, pytorch_lightning, scipy
    meta = {
        "original_commit": commit, "prompts": PROMPTS, "s4_layers": names,
        "features_yaml_sha256": sha(feat_yaml), "config_sha256": sha(out / "config.yaml"),
        "seed_init": SEED_INIT, "seed_perturb": SEED_PERTURB, "perturbation": counts,
        "ddim_S": DDIM_S, "ddim_eta": DDIM_ETA, "cfg_scale": CFG, "ddim_unguided_S": UNGUIDED_S, "threads": 1,
        "latent": LATENT, "setup_latent": SETUP_LATENT, "long_latent": LONG_LATENT, "mel_per_latent": MEL_PER_LATENT,
        "load_missing": list(missing), "load_unexpected": list(unexpected),
        "loss_args": LOSS_ARGS, "loss_logs": loss_logs,
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
                     "pytorch_lightning": pytorch_lightning.__version__, "einops": einops.__version__,
                     "opt_einsum": opt_einsum.__version__, "scipy": scipy.__version__, "platform": platform.platform()},
    }
    save_file(stored, str(out / "model.safetensors"), metadata={"original_commit": commit})
    save_file(flat, str(out / "golden.safetensors"), metadata={"meta": json.dumps(meta)})
    n = sum(p.numel() for p in model.parameters())
    print("full config:", write_full_keys(out, instantiate_from_config, OmegaConf), "state-dict entries")
    print(f"parameters {n:,}; state dict {len(sd)} entries; perturbation {counts}")
    print(f"S4 L loaded {G['s4_L_loaded'].tolist()} after (c) {G['s4_L_after_c'].tolist()} after {G['s4_L_after'].tolist()}")
    for f in ("model.safetensors", "golden.safetensors"):
        print(f, (out / f).stat().st_size, sha(out / f)[:16])
    print("max|unet_eps|", G["unet_eps"].abs().max().item(), "max|long_eps|", G["long_eps"].abs().max().item(),
          "setup drift after doubling", (G["setup_eps_after_doubling"] - G["setup_eps_reloaded"]).abs().max().item(),
          "max|ddim|", G["ddim_samples"].abs().max().item())


if __name__ == "__main__":
    main()
