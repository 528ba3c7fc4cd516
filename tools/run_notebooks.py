"""Execute course notebooks in place, so that they are committed with their outputs, and fingerprint them.

    OMP_NUM_THREADS=1 python tools/run_notebooks.py nbs/03_features.ipynb ...   # those notebooks
    OMP_NUM_THREADS=1 python tools/run_notebooks.py                              # every notebook in nbs/

Each notebook runs top to bottom in a fresh `python3` kernel in `nbs/`, with figures at a modest size
(tools/matplotlibrc). Widget views are dropped from the outputs (their text stays) and widget state is never saved.
The fingerprint of each executed notebook's code goes to `nbs/_outputs.json`; `tools/check_notebooks.py` (run in
CI) fails when a notebook's code no longer matches its fingerprint or its saved outputs were stripped.
"""
import argparse
import fcntl
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
RECORD = NBS / "_outputs.json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def code_fingerprint(nb: dict) -> str:
    "A hash of the notebook's code cells, in order."
    srcs = [c["source"] if isinstance(c["source"], str) else "".join(c["source"])
            for c in nb["cells"] if c["cell_type"] == "code"]
    return hashlib.sha256("\0".join(srcs).encode()).hexdigest()[:16]


def output_counts(nb: dict) -> dict:
    "How many code cells have outputs, and how many images they hold."
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    images = sum(1 for c in cells for o in c.get("outputs", []) if "image/png" in o.get("data", {}))
    return {"cells_with_outputs": sum(1 for c in cells if c.get("outputs")), "images": images}


def drop_widgets(nb) -> None:
    "Remove widget views (keeping their text) and widget state."
    nb.metadata.pop("widgets", None)
    for c in nb.cells:
        for o in c.get("outputs", []):
            o.get("data", {}).pop(WIDGET_VIEW, None)
        c["outputs"] = [o for o in c.get("outputs", []) if o.get("output_type") != "display_data" or o.get("data")]


def record(name: str, entry: dict | None) -> None:
    "Write (or remove) one notebook's entry in nbs/_outputs.json, under a lock."
    with open("/tmp/mug_nb_outputs.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(RECORD.read_text()) if RECORD.exists() else {}
        if entry is None: data.pop(name, None)
        else: data[name] = entry
        RECORD.write_text(json.dumps(dict(sorted(data.items())), indent=1) + "\n")


def run(path: Path, timeout: int) -> float:
    "Execute `path` in place; return the seconds it took."
    nb = nbformat.read(path, as_version=4)
    env_before = dict(os.environ)
    os.environ.update(MATPLOTLIBRC=str(ROOT / "tools" / "matplotlibrc"), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    os.environ.pop("MPLBACKEND", None)  # the kernel's inline backend draws the figures
    t0 = time.perf_counter()
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        os.environ.clear(); os.environ.update(env_before)
    secs = time.perf_counter() - t0
    drop_widgets(nb)
    nbformat.write(nb, path)
    subprocess.run(["nbdev-clean", "--fname", str(path)], check=True, cwd=ROOT)
    saved = json.loads(path.read_text())
    record(path.name, {"code": code_fingerprint(saved), **output_counts(saved), "seconds": round(secs, 1)})
    return secs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebooks", nargs="*", type=Path)
    ap.add_argument("--timeout", type=int, default=900, help="seconds a cell may take")
    args = ap.parse_args(argv)
    paths = [p.resolve() for p in args.notebooks] or sorted(NBS.glob("*.ipynb"))
    failed = []
    for p in paths:
        try: print(f"{p.name}: {run(p, args.timeout):.1f} s", flush=True)
        except Exception as e:  # a failing notebook keeps its old outputs on disk; the others still run
            failed.append(p.name); print(f"{p.name}: FAILED\n{str(e)[-3000:]}", file=sys.stderr, flush=True)
    if failed: sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
