"""Benchmark of mug_nb.osu: the line-by-line reader against the fast (numba) reader.

    python benchmarks/bench_osu.py             # the sample charts, and ../shared/peer_data's charts when present

Prints, per chart, the time of one `_parse_lines` and one `_parse_fast` read (best of 5, after numba has compiled
or loaded its cache), and checks that both give the same beatmap. Timings depend on the machine and on what else
runs on it.

What we measured once (2-core shared machine, so only a rough guide): a 3,500-note chart takes about 27 ms line by
line, about seventeen times what a parser needs that only splits the text into lines and keeps the hit objects as
strings (the original MuG Diffusion's); at that rate a Songs folder of 50,000 charts takes about twenty minutes
to read. The fast reader reads such a chart in well under a millisecond once compiled.
"""
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from mug_nb import osu  # noqa: E402


def best_of(f, n=5):
    "The fastest of n calls, in ms."
    out = []
    for _ in range(n):
        t0 = time.perf_counter(); f(); out.append(time.perf_counter() - t0)
    return min(out) * 1e3


def main():
    osu.JIT_AFTER, osu._jit["reads"] = 0, 0
    t0 = time.perf_counter(); kernels = osu._kernels()
    print(f"numba kernels: {'ready' if kernels else 'unavailable'} in {time.perf_counter() - t0:.2f} s")
    files = sorted((ROOT / "data_samples/charts").glob("*.osu"))
    peer = ROOT.parent / "shared/peer_data/maps"
    if peer.is_dir(): files += sorted(peer.rglob("*.osu"))
    for p in files:
        data = p.read_bytes(); text = osu._to_text(data, str(p))
        slow = osu._parse_lines(text, str(p), p)
        try: fast = osu._parse_fast(text, str(p), p, data, kernels)
        except osu._Fallback:
            print(f"{p.name[:40]:40s} {slow.n_notes:6d} notes  line by line {best_of(lambda: osu._parse_lines(text, str(p), p)):7.2f} ms  (fast reader declines)")
            continue
        same = fast == slow and all(np.array_equal(a, b, equal_nan=True) for a, b in zip(fast.note_arrays(), slow.note_arrays()))
        ms_slow = best_of(lambda: osu._parse_lines(text, str(p), p))
        ms_fast = best_of(lambda: osu._parse_fast(text, str(p), p, data, kernels))
        print(f"{p.name[:40]:40s} {slow.n_notes:6d} notes  line by line {ms_slow:7.2f} ms  fast {ms_fast:6.2f} ms"
              f"  {'same' if same else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
