"""Dataset pipeline at scale: `mug-nb prepare` on 1,000 beatmap sets (charts/s, peak memory), a re-run, the loader.

    python benchmarks/bench_data.py [--sets 1000] [--duration 10] [--workers 1 2] [--audio distinct|shared]
                                    [--items 40] [--keep]

1. Writes a Songs-like folder of `--sets` synthetic beatmap sets (Easy/Normal/Hard each) quickly: a handful of
   songs are rendered once; each set gets its own charts (another seed, all distinct) and, with `--audio distinct` (default),
   its own audio file (the song as 16-bit WAV with its last two samples set to the set's number: other bytes,
   so another spectrogram to compute, like a real Songs folder). `--audio shared` hard-links one file per song instead, so
   the spectrogram is computed once and the figures show the chart side alone.
2. Runs `mug-nb prepare SONGS --out DS --workers W --json` in a fresh process for each W, sampling the resident
   memory of the process and its workers: prints seconds, charts/s (inside `build_dataset` and for the whole
   command, start-up included) and peak memory (all processes together as PSS and as summed RSS, which counts
   the pages forked workers share with the parent once per process; and the largest process).
3. Runs the same command again on the unchanged folder: it must report `up_to_date`, process nothing and leave
   every file in DS untouched (checked by modification times).
4. Reads items back with `ChartDataset` through a DataLoader, times the mel cache, and a 60 s `synth_song`.
"""
import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402

from mug_nb.audio import MelCache  # noqa: E402
from mug_nb.data import Augment, ChartDataset, chart_hash  # noqa: E402
from mug_nb.osu import write_osu  # noqa: E402
from mug_nb.synth import chart_for_song, synth_song  # noqa: E402

DIFFICULTIES = ("Easy", "Normal", "Hard")
CLI = [sys.executable, "-c", "import sys; from mug_nb.cli import main; sys.exit(main())"]


def make_sets(root: Path, n: int, duration: float, audio: str, n_songs: int = 8) -> int:
    "Write `n` beatmap sets under `root`; returns the number of charts."
    songs = [synth_song(s, duration=duration) for s in range(min(n, n_songs))]
    wavs = []
    for song in songs:
        buf = io.BytesIO(); sf.write(buf, song.wave, song.sr, format="WAV", subtype="PCM_16"); wavs.append(buf.getvalue())
    shared, seen = {}, set()
    for i in range(n):
        k, folder = i % len(songs), root / f"{i:04d} bench - set {i}"
        song = songs[k]
        folder.mkdir(parents=True)
        if audio == "shared":
            if k not in shared:
                shared[k] = root / f"song{k}.wav"; shared[k].write_bytes(wavs[k])
            os.link(shared[k], folder / "audio.wav")
        else:
            wav = bytearray(wavs[k]); wav[-4:] = i.to_bytes(4, "little")  # the last two samples: other bytes, same music
            (folder / "audio.wav").write_bytes(wav)
        for d in DIFFICULTIES:
            for seed in range(i, i + 10**6, 10**4):  # another seed until the notes are new (no duplicates to drop)
                bm = chart_for_song(song, d, seed=seed, audio_filename="audio.wav")
                if chart_hash(bm.notes, 4) not in seen: seen.add(chart_hash(bm.notes, 4)); break
            bm.metadata.update(Title=f"set {i}", Artist="bench", BeatmapSetID=str(i + 1))
            write_osu(bm, folder / f"bench - set {i} (synth) [{d}].osu")
    for f in shared.values(): f.unlink()                  # the links keep the data
    return n * len(DIFFICULTIES)


def run_measured(args: list[str], dt: float = 0.02, pss_every: int = 25) -> tuple[dict, float, dict]:
    """Run the CLI; returns (its JSON report, wall seconds, peak memory in bytes).

    Peak memory of the process and its workers together: `rss` sums resident sets every `dt` s (pages shared by
    the forked workers are counted in each, an upper bound); `pss` shares them out (read every `pss_every`-th
    sample, as it costs ~15 ms a process); `one` is the largest single resident set."""
    t0 = time.perf_counter()
    p = subprocess.Popen(CLI + args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    top, peak, i = psutil.Process(p.pid), dict(rss=0, pss=0, one=0), 0
    while p.poll() is None:
        try:
            procs = [top] + top.children(recursive=True)
            rss = [q.memory_info().rss for q in procs]
            pss = sum(q.memory_full_info().pss for q in procs) if i % pss_every == 0 else 0
        except psutil.Error:
            rss, pss = [], 0
        if rss: peak.update(rss=max(peak["rss"], sum(rss)), one=max(peak["one"], max(rss)), pss=max(peak["pss"], pss))
        i += 1; time.sleep(dt)
    out = p.stdout.read()
    wall = time.perf_counter() - t0
    if p.returncode != 0: raise SystemExit(f"mug-nb {' '.join(args)} failed with status {p.returncode}")
    return json.loads(out), wall, peak


def stamps(folder: Path) -> dict:
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("*")}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", type=int, default=1000)
    ap.add_argument("--duration", type=float, default=10.0, help="song length, s")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--audio", choices=["distinct", "shared"], default="distinct")
    ap.add_argument("--items", type=int, default=40)
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="bench_data_"))
    src = tmp / "Songs"
    print(f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    t0 = time.perf_counter()
    n_charts = make_sets(src, a.sets, a.duration, a.audio)
    mb = sum(f.stat().st_size for f in src.rglob("*") if f.is_file()) / 2**20
    print(f"synthesised {a.sets} sets = {n_charts} charts, {a.duration:.0f} s {a.audio} audio each "
          f"({mb:.0f} MB) in {time.perf_counter() - t0:.1f} s")
    warm = tmp / "warm_src"; shutil.copytree(next(src.iterdir()), warm / "one")
    run_measured(["prepare", str(warm), "--out", str(tmp / "warm"), "--workers", "1", "--json"])  # numba cache
    out = None
    for w in a.workers:
        out = tmp / f"ds_w{w}"
        args = ["prepare", str(src), "--out", str(out), "--workers", str(w), "--json"]
        r, wall, mem = run_measured(args)
        s = r["seconds"]
        print(f"prepare workers={w}: {r['charts']} charts ({r['n_bad']} bad, {r['n_duplicates']} duplicates) from "
              f"{r['units']} sets in {s:.1f} s = {r['charts'] / s:.1f} charts/s "
              f"({wall:.1f} s = {r['charts'] / wall:.1f} charts/s with start-up); "
              f"peak memory of all its processes {mem['pss'] / 2**20:.0f} MB PSS, {mem['rss'] / 2**20:.0f} MB RSS "
              f"(largest process {mem['one'] / 2**20:.0f} MB)")
        before = stamps(out)
        r2, wall2, mem2 = run_measured(args)
        changed = sum(before.get(p) != v for p, v in stamps(out).items()) + len(set(before) - set(stamps(out)))
        print(f"  re-run on the unchanged folder: {r2['seconds']:.2f} s in build_dataset ({wall2:.1f} s with "
              f"start-up), processed={r2['processed']}, up_to_date={r2['up_to_date']}, files created or changed: "
              f"{changed}, peak memory {mem2['pss'] / 2**20:.0f} MB PSS")
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
    warm_song, song = sorted(src.glob("*/audio.wav"))[:2]
    cache = MelCache(tmp / "mel_bench"); cache(warm_song)       # librosa's first call (numba) is not a miss
    t0 = time.perf_counter(); cache(song); miss = time.perf_counter() - t0
    hit = min((lambda s: (cache(song), time.perf_counter() - s)[1])(time.perf_counter()) for _ in range(5))
    print(f"mel cache ({a.duration:.0f} s song): miss {miss * 1000:.1f} ms, hit {hit * 1000:.1f} ms "
          f"= {miss / hit:.0f}x faster (goal >= 10x)")
    t = min((lambda s: (synth_song(7, duration=60), time.perf_counter() - s)[1])(time.perf_counter()) for _ in range(3))
    print(f"synth_song: a 60 s song in {t:.2f} s")
    if a.keep: print(f"kept {tmp}")
    else: shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
