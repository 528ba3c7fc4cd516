"""The from-scratch run of 14_train ("A model that learns in front of you"), outside the notebook: its time and its
held-out placement F1 before and after, for any seed (is the chapter's F1 >= 0.5 luck of its seed?).

    OMP_NUM_THREADS=1 python benchmarks/bench_learn.py [--seed 0] [--diff-steps 1000]
"""
import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mug_nb.chart import array_to_notes  # noqa: E402
from mug_nb.evaluate import placement_f1  # noqa: E402
from mug_nb.model import build_model  # noqa: E402
from mug_nb.train import (StageConfig, SynthChartDataset, TrainConfig, make_drafts, model_config, seed_all,  # noqa: E402
                          train_model)

BEATS = (("Hard", dict(parts=("kick", "snare"), nps=20, min_gap_ms=60, min_gap_beats=0.25, chord_p=0, max_chord=1,
                       ln_p=0, jack_p=0.1)),)


def learn_config(seed: int, diff_steps: int) -> TrainConfig:
    "The chapter's TrainConfig (the lr decays over the last 40% of the diffusion steps)."
    return TrainConfig(
        model={"name": "tiny", "prompt": {"vocab": "default"}, "diffusion": {"parameterization": "x0"},
               "audio": {"onset_bands": 4}, "unet": {"audio_channels": [48, 32, 32, 32], "s4_layer": False}},
        window=128, seed=seed, ckpt_every=10**6, stages=("vae", "diffusion"),
        vae=StageConfig(lr=2e-3, batch_size=8, epochs=100, max_steps=800, kl_weight=1e-4, head_pos_weight=4.0),
        diffusion=StageConfig(lr=2e-3, batch_size=8, epochs=100, max_steps=diff_steps, optimizer="adamw",
                              weight_decay=0.01, prompt_dropout_p=0.0, uncond_p=0.0, decay_from=int(diff_steps * 0.6)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--diff-steps", type=int, default=1000)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    t0, cpu0 = time.time(), time.process_time()
    clips = dict(window=128, duration=24, charts=BEATS, augment=False)
    songs, held_out = SynthChartDataset(range(1000, 1048), hop=64, **clips), SynthChartDataset(range(900, 908), hop=128, **clips)
    truth = [array_to_notes(held_out[i]["note"].numpy(), 4) for i in range(len(held_out))]
    score = lambda m: placement_f1([array_to_notes(d.astype(np.float32), 4, logits=True)
                                    for d in make_drafts(m, held_out, steps=10, seed=0)], truth)
    tc = learn_config(args.seed, args.diff_steps)
    seed_all(tc.seed); model = build_model(model_config(tc))
    with tempfile.TemporaryDirectory() as d:
        model, _ = train_model(songs, held_out, dataclasses.replace(tc, stages=("vae",)), d, model=model, progress=False)
        before = score(model)
        model, _ = train_model(songs, held_out, tc, d, model=model, resume=True, progress=False)
    after = score(model)
    print(f"seed {args.seed}: F1 {before:.3f} -> {after:.3f} ({after!r}); {(time.time() - t0) / 60:.1f} min, "
          f"{(time.process_time() - cpu0) / 60:.1f} CPU-min (data, both stages, two scores)")


if __name__ == "__main__":
    main()
