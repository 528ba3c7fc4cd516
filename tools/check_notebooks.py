"""Notebook hygiene: saved outputs that match the code, no widget state or widget views, kernel python3, small files.

A notebook is fresh when its code is the code `tools/run_notebooks.py` executed (the fingerprint in
`nbs/_outputs.json`) and its saved outputs are all there (as many cells with outputs, as many images).
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_notebooks import code_fingerprint, output_counts  # noqa: E402

MAX_BYTES = 1_000_000


def staleness(path: Path, nb: dict, recorded: dict):
    "Why `nb`'s saved outputs are missing or out of date (nothing when fresh)."
    rec = recorded.get(path.name)
    if rec is None:
        yield "never executed by tools/run_notebooks.py (no entry in nbs/_outputs.json)"
        return
    if code_fingerprint(nb) != rec["code"]:
        yield "stale: its code changed since its outputs were saved"
    counts = output_counts(nb)
    for key in ("cells_with_outputs", "images"):
        if counts[key] < rec[key]:
            yield f"outputs stripped: {counts[key]} {key.replace('_', ' ')}, {rec[key]} when executed"


def problems(path: Path, recorded: dict):
    nb = json.loads(path.read_text())
    yield from staleness(path, nb, recorded)
    md = nb.get("metadata", {})
    if "widgets" in md:
        yield "saved widget state in metadata"
    if md.get("kernelspec", {}).get("name") != "python3":
        yield f"kernelspec {md.get('kernelspec', {}).get('name')!r}, expected 'python3'"
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            if "application/vnd.jupyter.widget-view+json" in out.get("data", {}):
                yield "a widget-view output is saved"
                break
    if path.stat().st_size > MAX_BYTES:
        yield f"{path.stat().st_size} bytes (limit {MAX_BYTES})"


def main():
    root = Path(__file__).resolve().parents[1] / "nbs"
    record = root / "_outputs.json"
    recorded = json.loads(record.read_text()) if record.exists() else {}
    bad = [f"{p.name}: {msg}" for p in sorted(root.glob("*.ipynb")) for msg in problems(p, recorded)]
    if bad:
        sys.exit("\n".join(bad) + "\nre-execute with: OMP_NUM_THREADS=1 python tools/run_notebooks.py nbs/<notebook>")
    print(f"notebook checks ok ({len(list(root.glob('*.ipynb')))} notebooks)")


if __name__ == "__main__":
    main()
