"""Train the bundled model (tiny VAE + tiny latent diffusion) on the project's synthetic songs, on one CPU core.

    OMP_NUM_THREADS=1 python tools/train_bundled.py --out runs/bundled            # train (resumable: add --resume)
    python tools/train_bundled.py --out runs/bundled --install                     # copy the weights into mug_nb/assets

Training songs use synth seeds 1000.. (the benchmark's unseen songs use seeds below 1000; validation 900..).
Everything is seeded: the same command gives the same weights (on the same torch build).
"""
import argparse
import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mug_nb.model import Config  # noqa: E402
from mug_nb.train import (StageConfig, SynthChartDataset, TrainConfig, model_vocab, train_model)  # noqa: E402

TRAIN_SEED0, VAL_SEED0 = 1000, 900


def bundled_train_config(args) -> TrainConfig:
    "The TrainConfig of the bundled model (recorded in the checkpoint and in 13_train)."
    return TrainConfig(
        model={"name": "tiny", "prompt": {"vocab": "default"}, "vae": {"middle_channels": args.vae_width}},
        vae=StageConfig(lr=args.vae_lr, batch_size=args.vae_batch, epochs=1000, max_steps=args.vae_steps, kl_weight=1e-4,
                        head_pos_weight=args.head_pos_weight),
        diffusion=StageConfig(lr=args.lr, batch_size=args.batch, epochs=1000, max_steps=args.diff_steps,
                              optimizer="adamw", weight_decay=0.01, prompt_dropout_p=0.5, uncond_p=0.1),
        seed=23, ckpt_every=100, window=args.window, stages=tuple(args.stages))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/bundled")
    ap.add_argument("--songs", type=int, default=200)
    ap.add_argument("--val-songs", type=int, default=6)
    ap.add_argument("--duration", type=float, default=48.0)
    ap.add_argument("--window", type=int, default=512)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--vae-batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--vae-lr", type=float, default=2e-3)
    ap.add_argument("--vae-width", type=int, default=32)
    ap.add_argument("--head-pos-weight", type=float, default=4.0)
    ap.add_argument("--vae-steps", type=int, default=2000)
    ap.add_argument("--diff-steps", type=int, default=6000)
    ap.add_argument("--stages", nargs="+", default=["vae", "diffusion"])
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--install", action="store_true",
                    help="copy OUT/model into mug_nb/assets (model.safetensors + config.json, read by generate.load_bundled)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.install:
        src, dst = out / "model", ROOT / "mug_nb" / "assets"
        shutil.copy(src / "model.safetensors", dst / "model.safetensors")
        meta = json.loads((src / "config.json").read_text())
        hist = out / "history.json"
        if hist.exists():
            h = json.loads(hist.read_text())
            meta["training"] = {k: {"steps": v["step"], "seconds": round(v["seconds"], 1),
                                    "final_train_loss": sum(v["train_loss"][-100:]) / max(1, len(v["train_loss"][-100:])),
                                    "val_loss": v["val_loss"]} for k, v in h.items()}
            every = 20   # loss curves, averaged over blocks of `every` steps, for the plot in 13_train
            meta["curves"] = {k: {"every": every, "val_loss": v["val_loss"],
                                  "train_loss": [round(sum(v["train_loss"][i:i + every]) / len(v["train_loss"][i:i + every]), 5)
                                                 for i in range(0, len(v["train_loss"]), every)]} for k, v in h.items()}
            meta["reproduce"] = "OMP_NUM_THREADS=1 python tools/train_bundled.py " + " ".join(
                f"--{k.replace('_', '-')} {v}" for k, v in json.loads((out / "command.json").read_text()).items()
                if k not in ("out", "resume", "install", "stages"))
        (dst / "config.json").write_text(json.dumps(meta, indent=1))
        print("installed", dst / "model.safetensors", (dst / "model.safetensors").stat().st_size, "bytes")
        return
    torch.set_num_threads(1)
    tc = bundled_train_config(args)
    from mug_nb.train import model_config
    cfg = model_config(tc)
    t0 = time.time()
    vocab = model_vocab(cfg)
    train = SynthChartDataset(range(TRAIN_SEED0, TRAIN_SEED0 + args.songs), window=args.window,
                              duration=args.duration, vocab=vocab, progress=True)
    val = SynthChartDataset(range(VAL_SEED0, VAL_SEED0 + args.val_songs), window=args.window, hop=args.window,
                            duration=args.duration, vocab=vocab, augment=False)
    print(f"data: {len(train)} training windows from {args.songs} songs, {len(val)} validation windows "
          f"({time.time() - t0:.0f} s)", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "command.json").write_text(json.dumps(vars(args), indent=1))
    from mug_nb.model import build_model
    torch.manual_seed(tc.seed)
    model = build_model(cfg)
    model, hist = train_model(train, val, tc, out, resume=args.resume, model=model)
    for k, h in hist.items():
        print(f"{k}: {h['step']} steps, {h['seconds']:.0f} s, last-100 train loss "
              f"{sum(h['train_loss'][-100:]) / max(1, len(h['train_loss'][-100:])):.4f}, val {h['val_loss']}")


if __name__ == "__main__":
    main()
