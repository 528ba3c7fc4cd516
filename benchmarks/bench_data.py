"""Dataset pipeline speed: seconds per chart to prepare, and items per second from the loader.

    python benchmarks/bench_data.py [--songs 6] [--duration 60] [--workers 1 2] [--items 40]

Builds a dataset from synthetic songs (each a beatmap set with Easy/Normal/Hard charts) in a temporary folder,
then reads items back with `ChartDataset` (full-size samples, and tiny 512-frame crops) through a DataLoader.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from mug_nb.audio import MelCache  # noqa: E402
from mug_nb.data import Augment, ChartDataset, build_dataset  # noqa: E402
from mug_nb.synth import synth_song, write_sample  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--songs", type=int, default=6)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--items", type=int, default=40)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="bench_data_"))
    src = tmp / "Songs"
    t0 = time.perf_counter()
    for s in range(a.songs):
        write_sample(synth_song(s, duration=a.duration), src / f"set{s}", difficulties=("Easy", "Normal", "Hard"))
    n_charts = 3 * a.songs
    print(f"synthesised {a.songs} songs x {a.duration:.0f} s + {n_charts} charts in {time.perf_counter() - t0:.2f} s")
    build_dataset([src], tmp / "warm", workers=1, progress=False, max_units=1)     # warm librosa/numba, rosu
    out = None
    for w in a.workers:
        out = tmp / f"ds_w{w}"
        t0 = time.perf_counter(); r = build_dataset([src], out, workers=w, progress=False); dt = time.perf_counter() - t0
        print(f"prepare workers={w}: {dt:.2f} s for {r['charts']} charts = {dt / max(1, r['charts']):.3f} s/chart "
              f"({a.duration:.0f} s songs)")
        t0 = time.perf_counter(); r2 = build_dataset([src], out, workers=w, progress=False)
        print(f"  re-run (nothing new): {time.perf_counter() - t0:.3f} s, processed={r2['processed']}")
    for title, kw in [("full size 16x4096 / 128x32768, no augmentation", dict()),
                      ("full size, original augmentations", dict(augment=Augment.original())),
                      ("tiny crops 16x512 / 128x4096, original augmentations",
                       dict(note_frames=512, crop="random", augment=Augment.original()))]:
        ds = ChartDataset(out, split=None, seed=0, **kw)
        dl = torch.utils.data.DataLoader(ds, batch_size=4, shuffle=True, num_workers=0)
        n, t0 = 0, time.perf_counter()
        while n < a.items:
            for b in dl:
                n += len(b["note"])
                if n >= a.items: break
        dt = time.perf_counter() - t0
        print(f"loader ({title}): {n / dt:.1f} items/s")
    song = next(src.glob("set0/*.ogg"), None) or next(src.glob("set0/audio.*"))
    cache = MelCache(tmp / "mel_bench")
    t0 = time.perf_counter(); cache(song); miss = time.perf_counter() - t0
    hit = min((lambda s: (cache(song), time.perf_counter() - s)[1])(time.perf_counter()) for _ in range(5))
    print(f"mel cache: miss {miss * 1000:.1f} ms, hit {hit * 1000:.1f} ms = {miss / hit:.0f}x faster (goal >= 10x)")
    t = min((lambda s: (synth_song(7, duration=60), time.perf_counter() - s)[1])(time.perf_counter()) for _ in range(3))
    print(f"synth_song: a 60 s song in {t:.2f} s")


if __name__ == "__main__":
    main()
