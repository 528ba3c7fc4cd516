"""Timings of the condition encoders and the VAE (CPU, float32, inference mode unless stated).

    python benchmarks/bench_encoders.py [--threads N] [--repeat R]

Prints seconds for: the full audio encoder on one 190 s song (128 x 32768 mel frames), the full VAE
encoding and decoding one 4096-frame chart, and one training step of the tiny VAE (4 x 16 x 4096).
"""
import argparse
import time

import torch

from mug_nb.encoders import BeatmapFeatureEmbedder, MelspectrogramScaleEncoder1D
from mug_nb.vae import FULL_DDCONFIG, TINY_DDCONFIG, AutoencoderKL, ManiaReconstructLoss, vae_loss


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {a.threads} thread(s), best of {a.repeat}")
    wave, vae, emb = MelspectrogramScaleEncoder1D().eval(), AutoencoderKL(FULL_DDCONFIG).eval(), BeatmapFeatureEmbedder(128)
    mel, notes, ids = torch.rand(1, 128, 32768) * 4, (torch.rand(1, 16, 4096) < 0.05).float(), torch.zeros(2, 21)
    with torch.inference_mode():
        wave(mel[..., :2048])  # warm-up
        print(f"audio encoder, full, 1 x 128 x 32768 : {best(lambda: wave(mel), a.repeat):7.3f} s")
        print(f"  (last 4 levels only, keep_last=4)   : {best(lambda: wave(mel, keep_last=4), a.repeat):7.3f} s")
        print(f"prompt embedder, 2 x 21 ids          : {best(lambda: emb(ids), a.repeat) * 1e3:7.3f} ms")
        print(f"VAE full encode, 1 x 16 x 4096       : {best(lambda: vae.encode(notes), a.repeat):7.3f} s")
        z = vae.encode(notes).mode()
        print(f"VAE full decode, 1 x 16 x 512 latent : {best(lambda: vae.decode(z), a.repeat):7.3f} s")
    tiny, crit = AutoencoderKL(TINY_DDCONFIG), ManiaReconstructLoss()
    opt = torch.optim.Adam(tiny.parameters(), lr=1e-3)
    batch = (torch.rand(4, 16, 4096) < 0.05).float()

    def step():
        loss, _ = vae_loss(tiny, crit, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    step()
    print(f"tiny VAE training step, 4 x 16 x 4096: {best(step, a.repeat):7.3f} s")


if __name__ == "__main__":
    main()
