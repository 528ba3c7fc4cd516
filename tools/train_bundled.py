"""Train the bundled model (tiny VAE + tiny latent diffusion) on the project's synthetic songs, on one CPU core.

    OMP_NUM_THREADS=1 python tools/train_bundled.py --out runs/bundled            # train (resumable: add --resume)
    python tools/train_bundled.py --out runs/bundled --install                     # copy the weights into mug_nb/assets

On a machine with many cores and a GPU (accelerate picks the device; the GPU run in MODEL_CARD.md used these):

    python tools/train_bundled.py --out runs/gpu --synth-workers 15 --workers 14 --batch 64 \
        --data-cache /tmp/songs.npz --time-budget 600 ...     # --diff-steps follows a speed probe of the device

Training songs use synth seeds 1000.. (the benchmark's unseen songs use seeds below 1000; validation 900..).
Everything is seeded: the same command gives the same weights (on the same torch build).
"""
import argparse
import dataclasses
import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mug_nb.model import Config  # noqa: E402
from mug_nb.model import model_vocab  # noqa: E402
from mug_nb.train import (StageConfig, SynthChartDataset, TrainConfig, train_model)  # noqa: E402

TRAIN_SEED0, VAL_SEED0 = 1000, 900


# The bundled model's architecture, spelled out in full (so that later changes to the `tiny` preset cannot change it).
BUNDLED_MODEL = {
    "unet": {"in_channels": 16, "model_channels": 16, "out_channels": 16, "num_res_blocks": 1, "channel_mult": [1, 2, 4, 4],
             "attention_resolutions": [8], "num_heads": 4, "num_head_channels": -1, "context_dim": 32,
             "audio_channels": [16, 32, 32, 32], "dropout": 0.0, "s4_layer": True, "lstm_layer": False,
             "transformer_depth": 1, "num_groups": 8, "s4_mode": "exact"},
    "vae": {"x_channels": 16, "middle_channels": 32, "z_channels": 16, "num_groups": 8, "channel_mult": [1, 2, 4, 4],
            "num_res_blocks": 1},
    "audio": {"n_freq": 128, "middle_channels": 8, "channel_mult": [1, 1, 1, 1, 2, 2, 2, 4, 4, 4], "num_res_blocks": 1,
              "num_heads": 4, "num_groups": 8, "attention_resolutions": [128, 256, 512], "dropout": 0.0,
              "use_checkpoint": False},
    "prompt": {"embed_dim": 32, "vocab": "default"},
    "diffusion": {"timesteps": 1000, "beta_schedule": "linear", "linear_start": 0.0001, "linear_end": 0.02,
                  "z_channels": 16, "z_length": 512, "parameterization": "eps", "loss_type": "smooth_l1"},
}


def bundled_train_config(args) -> TrainConfig:
    "The TrainConfig of the bundled model (recorded in the checkpoint and in 14_train)."
    model = {k: dict(v) for k, v in BUNDLED_MODEL.items()}
    if getattr(args, "unet_channels", 16) != 16:
        model["unet"].update(model_channels=args.unet_channels, channel_mult=[1, 2, 2, 2])
    if getattr(args, "prompt_embedding", False): model["unet"]["prompt_embedding"] = True
    if getattr(args, "onset_bands", 0):
        model["audio"]["onset_bands"] = args.onset_bands
        model["unet"]["audio_channels"] = [16 + 8 * args.onset_bands, 32, 32, 32]
    if getattr(args, "refiner_channels", 0): model["refiner"] = {"channels": args.refiner_channels}
    return TrainConfig(
        model={"name": "tiny", **model},
        vae=StageConfig(lr=args.vae_lr, batch_size=args.vae_batch, epochs=1000, max_steps=args.vae_steps, kl_weight=1e-4,
                        head_pos_weight=args.head_pos_weight, decay_from=getattr(args, "vae_decay_from", None)),
        diffusion=StageConfig(lr=args.lr, batch_size=args.batch, epochs=1000, max_steps=args.diff_steps,
                              optimizer="adamw", weight_decay=0.01, prompt_dropout_p=0.5, uncond_p=0.1,
                              few_p=getattr(args, "few_p", 0.0), decay_from=args.decay_from),
        refiner=StageConfig(lr=getattr(args, "refiner_lr", 2e-3), batch_size=getattr(args, "refiner_batch", 16),
                            epochs=1000, max_steps=getattr(args, "refiner_steps", 3000), optimizer="adamw",
                            weight_decay=0.01, grad_clip=1.0, prompt_dropout_p=0.3, uncond_p=0.1, decay_from=0),
        draft_steps=getattr(args, "recommend_steps", 10), draft_cfg=getattr(args, "recommend_cfg", 1.0),
        seed=23, ckpt_every=100, window=args.window, stages=tuple(args.stages))


def warm_start(model, path: Path) -> str:
    """Start from an earlier model's weights (its folder or .safetensors file). A tensor that grew (more input
    channels: the onset channels are appended after the old audio channels) keeps the old values in its leading
    slice; the new inputs start at zero weight, so the warm-started network computes what the old one did. A tensor
    with other outputs (the prompt embedding of a new vocabulary) keeps its fresh initialisation."""
    from safetensors.torch import load_file
    old = load_file(str(path / "model.safetensors" if path.is_dir() else path))
    grown, fresh, same = [], [], 0
    with torch.no_grad():
        for k, v in model.state_dict().items():
            if k not in old: continue
            o = old[k]
            if o.shape == v.shape: v.copy_(o); same += 1; continue
            if o.ndim == v.ndim and o.shape[0] != v.shape[0]:    # other outputs (a new prompt vocabulary): fresh
                fresh.append(k); continue
            if o.ndim != v.ndim or any(a > b for a, b in zip(o.shape, v.shape)):
                raise ValueError(f"{path}: {k} has shape {tuple(o.shape)}, cannot grow into {tuple(v.shape)}")
            if v.ndim > 1: v.zero_()                          # new input channels: no effect at first
            v[tuple(slice(0, n) for n in o.shape)] = o
            grown.append(k)
    return f"{same} tensors copied, {len(grown)} grown ({', '.join(grown)}), {len(fresh)} left fresh ({', '.join(fresh)})"


def _synth_chunk(args):
    seeds, kw = args
    torch.set_num_threads(1)
    ds = SynthChartDataset(seeds, **kw)
    return ds.mels, ds.notes, ds.items


def synth_dataset(seeds, workers: int = 1, **kw) -> SynthChartDataset:
    "`SynthChartDataset(seeds, **kw)`, built by `workers` processes (the same windows, in the same order)."
    seeds = list(seeds)
    if workers <= 1: return SynthChartDataset(seeds, **kw)
    import multiprocessing as mp
    from mug_nb.audio import log_mel
    log_mel(torch.zeros(22050).numpy())                      # compile librosa's kernels once, before forking
    chunks = [seeds[i::workers] for i in range(workers)]
    with mp.get_context("fork").Pool(workers) as pool:
        parts = pool.map(_synth_chunk, [(c, {**kw, "progress": False}) for c in chunks])
    ds = SynthChartDataset([], **kw)
    by_seed = {}
    for (mels, notes, items), chunk in zip(parts, chunks):
        windows = {k: [] for k in range(len(chunk))}
        for it in items: windows[it[0]].append(it)
        for k, s in enumerate(chunk): by_seed[s] = (mels[k], notes[k], windows[k])
    for s in seeds:                                          # back into seed order
        mel, note, items = by_seed[s]
        ds.items += [(len(ds.mels), *it[1:]) for it in items]
        ds.mels.append(mel); ds.notes.append(note)
    return ds


def save_datasets(path: Path, train: SynthChartDataset, val: SynthChartDataset) -> None:
    "Both datasets' songs and windows as plain arrays in one .npz (no pickles: `load_datasets` runs no code)."
    arrays = {}
    for name, ds in (("train", train), ("val", val)):
        arrays[f"{name}_mels"] = np.concatenate(ds.mels, 1)
        arrays[f"{name}_mel_len"] = np.array([m.shape[1] for m in ds.mels])
        arrays[f"{name}_notes"] = np.concatenate(ds.notes, 2)
        arrays[f"{name}_note_len"] = np.array([n.shape[2] for n in ds.notes])
        arrays[f"{name}_items"] = np.array([it[:3] for it in ds.items], np.int64).reshape(-1, 3)
        arrays[f"{name}_ids"] = np.stack([it[3] for it in ds.items])
        arrays[f"{name}_augment"] = np.array(ds.augment)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays); tmp.rename(path)


def load_datasets(path: Path, **kw) -> tuple[SynthChartDataset, SynthChartDataset]:
    "The datasets written by `save_datasets` (`kw`: window, duration, vocab, as they were built)."
    z = np.load(path, allow_pickle=False)
    out = []
    for name in ("train", "val"):
        ds = SynthChartDataset([], augment=bool(z[f"{name}_augment"]), **kw)
        ds.mels = np.split(z[f"{name}_mels"], np.cumsum(z[f"{name}_mel_len"])[:-1], 1)
        ds.notes = np.split(z[f"{name}_notes"], np.cumsum(z[f"{name}_note_len"])[:-1], 2)
        ds.items = [(int(s), int(j), int(t), ids) for (s, j, t), ids in zip(z[f"{name}_items"], z[f"{name}_ids"])]
        out.append(ds)
    return out[0], out[1]


def speed_probe(model, tc, batch: int, window: int, steps: int = 20) -> float:
    "Seconds per diffusion training step (forward + backward + AdamW) at this batch, on the device training uses."
    from mug_nb.chart import MEL_PER_NOTE_FRAME
    from mug_nb.train import latent_diffusion_loss, missing_ids
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    m = model.to(dev); miss = missing_ids(m.config).to(dev)
    m.model.first_stage_model.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-9)
    n_feat = len(model_vocab(m.config).features)
    b = {"note": torch.zeros(batch, 16, window, device=dev), "valid_flag": torch.ones(batch, window, device=dev),
         "audio": torch.randn(batch, 128, window * MEL_PER_NOTE_FRAME, device=dev),
         "feature": torch.zeros(batch, n_feat, dtype=torch.long, device=dev)}
    sd = {k: v.detach().clone() for k, v in m.state_dict().items()}
    for i in range(steps + 5):
        if i == 5:
            if dev == "cuda": torch.cuda.synchronize()
            t0 = time.time()
        loss = latent_diffusion_loss(m, b, tc.diffusion, miss); opt.zero_grad(); loss.backward(); opt.step()
    if dev == "cuda": torch.cuda.synchronize()
    m.load_state_dict(sd); m.to("cpu"); m.model.first_stage_model.requires_grad_(True)
    return (time.time() - t0) / steps


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/bundled")
    ap.add_argument("--songs", type=int, default=200)
    ap.add_argument("--val-songs", type=int, default=6)
    ap.add_argument("--duration", type=float, default=48.0)
    ap.add_argument("--charts", choices=["base", "wide"], default="base",
                    help="base: SYNTH_CHARTS (eight difficulties); wide: SYNTH_CHARTS + CORNER_CHARTS (05_synth)")
    ap.add_argument("--few-p", type=float, default=0.0,
                    help="diffusion: share of prompts cut to 1-3 features, as users ask (14_train, drop_prompt)")
    ap.add_argument("--window", type=int, default=512)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--vae-batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--vae-lr", type=float, default=2e-3)
    ap.add_argument("--unet-channels", type=int, default=16, help="16 (channel_mult 1,2,4,4) or 32 (1,2,2,2)")
    ap.add_argument("--decay-from", type=int, default=None, help="diffusion: linear lr decay from this step to the last")
    ap.add_argument("--vae-decay-from", type=int, default=None, help="VAE: linear lr decay from this step to the last")
    ap.add_argument("--head-pos-weight", type=float, default=4.0)
    ap.add_argument("--vae-steps", type=int, default=2000)
    ap.add_argument("--diff-steps", type=int, default=6000)
    ap.add_argument("--stages", nargs="+", default=["vae", "diffusion"], help="any of vae, diffusion, refiner")
    ap.add_argument("--refiner-channels", type=int, default=0, help="a note-frame refiner of this width (15_refiner); 0: none")
    ap.add_argument("--refiner-steps", type=int, default=3000)
    ap.add_argument("--refiner-lr", type=float, default=2e-3)
    ap.add_argument("--refiner-batch", type=int, default=16)
    ap.add_argument("--seed0", type=int, default=TRAIN_SEED0,
                    help="first synth seed of the training songs (a refiner learns from drafts of songs the diffusion "
                         "stage never saw: use seeds above those it trained on)")
    ap.add_argument("--onset-bands", type=int, default=0, help="onset-strength channels (09_encoders); 0: off")
    ap.add_argument("--prompt-embedding", action="store_true", help="prompt added to the timestep embedding (11_unet)")
    ap.add_argument("--init-from", default=None, help="warm start from this model folder (see warm_start)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: steadiest for this tiny model)")
    ap.add_argument("--recommend-cfg", type=float, default=1.0, help="--install: the guidance scale generate() uses by default")
    ap.add_argument("--recommend-steps", type=int, default=10, help="--install: the DDIM steps generate() uses by default")
    ap.add_argument("--stop-after", type=int, default=None, help="stop after this many optimizer steps of both stages")
    ap.add_argument("--workers", type=int, default=0, help="data-loader processes")
    ap.add_argument("--synth-workers", type=int, default=1, help="processes that synthesise the songs")
    ap.add_argument("--data-cache", default=None, help=".npz of the (train, val) datasets: read if present, else written")
    ap.add_argument("--time-budget", type=float, default=None,
                    help="seconds for the diffusion stage: --diff-steps (and --decay-from, as a fraction) follow a speed probe")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--finalize", action="store_true", help="write OUT/model from the last checkpoints and stop")
    ap.add_argument("--install", action="store_true",
                    help="copy OUT/model into mug_nb/assets (model.safetensors + config.json, read by generate.load_bundled)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.finalize and list(args.stages) == ["refiner"]:
        sys.exit("--finalize is for runs that trained the VAE or diffusion stage; a refiner run's OUT/model is final")
    if args.finalize:
        # Weights of the last checkpoints -> OUT/model, without rebuilding the data (for a run stopped early;
        # reproduce it with --diff-steps set to the step printed here).
        from safetensors.torch import load_model
        from mug_nb.model import build_model, save_checkpoint
        from mug_nb.train import checkpoint_meta, model_config
        # the run's own training config (its lr, batch, ...), not this command's defaults; the architecture flags
        # given here must agree with it, or the weights would not load
        saved = out / "train_config.json"
        tc = TrainConfig.from_dict(json.loads(saved.read_text())) if saved.exists() else bundled_train_config(args)
        model = build_model(model_config(tc))
        load_model(model, str(out / "diffusion" / "last" / "model.safetensors"))
        # The head BCE's positive weight w moves the optimal head logit by log((1 + w) / 2): subtract it from the
        # decoder's output bias, so that logit 0 (what array_to_notes thresholds at) means p = 0.5 again.
        # Only the decoder's last bias changes; the latent space (and so the diffusion model) is untouched.
        shift = math.log((1 + args.head_pos_weight) / 2) if args.head_pos_weight else 0.0
        with torch.no_grad(): model.model.first_stage_model.decoder.conv_out.bias[:4] -= shift
        hist = {k: json.loads((out / k / "last" / "state.json").read_text()) for k in ("vae", "diffusion")}
        tc.vae.max_steps, tc.diffusion.max_steps = hist["vae"]["step"], hist["diffusion"]["step"]
        save_checkpoint(model, model.config, out / "model", extra=checkpoint_meta(tc, model))
        (out / "history.json").write_text(json.dumps({k: {kk: v[kk] for kk in ("train_loss", "val_loss", "step", "seconds")}
                                                      for k, v in hist.items()}))
        cmd = json.loads((out / "command.json").read_text())
        cmd.update(vae_steps=hist["vae"]["step"], diff_steps=hist["diffusion"]["step"])
        (out / "command.json").write_text(json.dumps(cmd, indent=1))
        print("finalized at", {k: v["step"] for k, v in hist.items()})
        return
    if args.install:
        src, dst = out / "model", ROOT / "mug_nb" / "assets"
        shutil.copy(src / "model.safetensors", dst / "model.safetensors")
        meta = json.loads((src / "config.json").read_text())
        hist = out / "history.json"
        old = json.loads((dst / "config.json").read_text()) if (dst / "config.json").exists() else {}
        if hist.exists():   # the stages this run trained replace their records; the others' are kept
            h = json.loads(hist.read_text())
            meta["training"] = {**old.get("training", {}), **{k: {"steps": v["step"], "seconds": round(v["seconds"], 1),
                                    "final_train_loss": sum(v["train_loss"][-100:]) / max(1, len(v["train_loss"][-100:])),
                                    "val_loss": v["val_loss"]} for k, v in h.items()}}
            every = 20   # loss curves, averaged over blocks of `every` steps, for the plot in 14_train
            meta["curves"] = {**old.get("curves", {}), **{k: {"every": every, "val_loss": v["val_loss"],
                                  "train_loss": [round(sum(v["train_loss"][i:i + every]) / len(v["train_loss"][i:i + every]), 5)
                                                 for i in range(0, len(v["train_loss"]), every)]} for k, v in h.items()}}
            cmd = json.loads((out / "command.json").read_text())
            flag = lambda k, v: f"--{k.replace('_', '-')}" + ("" if v is True else f" {' '.join(map(str, v)) if isinstance(v, list) else v}")
            flags = lambda ks: " ".join(flag(k, v) for k, v in cmd.items() if k in ks and v not in (None, False))
            if "diffusion" in h:
                this = "OMP_NUM_THREADS=1 python tools/train_bundled.py " + flags(
                    [k for k in cmd if k not in ("out", "resume", "install", "finalize") and not k.startswith("refiner")])
            else:                                        # a refiner run on top of the installed model
                this = "OMP_NUM_THREADS=1 python tools/train_bundled.py --stages refiner " + flags(
                    ("unet_channels", "onset_bands", "prompt_embedding", "refiner_channels", "refiner_steps",
                     "refiner_lr", "refiner_batch", "songs", "seed0", "charts", "synth_workers", "init_from"))
            if cmd.get("init_from"):                     # a warm start: the chain is in the model card
                meta["reproduce"] = ("a chain of warm-started runs of tools/train_bundled.py, every command in "
                                     f"MODEL_CARD.md; the last: {this}")
            else:
                meta["reproduce"] = this if "diffusion" in h else f"{old.get('reproduce', '')}; then the refiner: {this}"
        meta["sampling"] = {"cfg_scale": args.recommend_cfg,       # read by generate.guidance_scale
                            "steps": args.recommend_steps}         # ... and generate.sampling_steps
        (dst / "config.json").write_text(json.dumps(meta, indent=1))
        print("installed", dst / "model.safetensors", (dst / "model.safetensors").stat().st_size, "bytes")
        return
    torch.set_num_threads(args.threads)
    tc = bundled_train_config(args)
    tc.num_workers = args.workers
    from mug_nb.train import model_config
    cfg = model_config(tc)
    t0 = time.time()
    vocab = model_vocab(cfg)
    cache = Path(args.data_cache) if args.data_cache else None
    from mug_nb.synth import CORNER_CHARTS
    from mug_nb.train import SYNTH_CHARTS
    charts = SYNTH_CHARTS + (CORNER_CHARTS if args.charts == "wide" else ())
    if cache is not None and cache.exists():
        train, val = load_datasets(cache, window=args.window, duration=args.duration, vocab=vocab)
    else:
        train = synth_dataset(range(args.seed0, args.seed0 + args.songs), args.synth_workers, window=args.window,
                              duration=args.duration, vocab=vocab, charts=charts, progress=True)
        val = SynthChartDataset(range(VAL_SEED0, VAL_SEED0 + args.val_songs), window=args.window, hop=args.window,
                                duration=args.duration, vocab=vocab, charts=charts, augment=False)
        if cache is not None:
            save_datasets(cache, train, val)
    print(f"data: {len(train)} training windows from {args.songs} songs, {len(val)} validation windows "
          f"({time.time() - t0:.0f} s)", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "command.json").write_text(json.dumps(vars(args), indent=1))
    from mug_nb.model import build_model
    torch.manual_seed(tc.seed)
    model = build_model(cfg)
    if args.init_from: print("warm start:", warm_start(model, Path(args.init_from)), flush=True)
    if args.time_budget:
        sec = speed_probe(model, tc, args.batch, args.window)
        frac = (args.decay_from / args.diff_steps) if args.decay_from else None
        tc.diffusion.max_steps = args.diff_steps = max(100, int(args.time_budget / (sec * 1.15)))
        if frac is not None: tc.diffusion.decay_from = args.decay_from = int(frac * args.diff_steps)
        print(f"speed probe: {sec * 1000:.1f} ms/step -> {args.diff_steps} diffusion steps "
              f"(decay from {args.decay_from})", flush=True)
        (out / "command.json").write_text(json.dumps(vars(args), indent=1))
    model, hist = train_model(train, val, tc, out, resume=args.resume, model=model, stop_after=args.stop_after)
    for k, h in hist.items():
        print(f"{k}: {h['step']} steps, {h['seconds']:.0f} s, last-100 train loss "
              f"{sum(h['train_loss'][-100:]) / max(1, len(h['train_loss'][-100:])):.4f}, val {h['val_loss']}")


if __name__ == "__main__":
    main()
