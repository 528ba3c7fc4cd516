"""Notebook hygiene: no saved widget state or widget views, kernel python3, small files."""
import json
import sys
from pathlib import Path

MAX_BYTES = 350_000


def problems(path: Path):
    nb = json.loads(path.read_text())
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
    bad = [f"{p.name}: {msg}" for p in sorted(root.glob("*.ipynb")) for msg in problems(p)]
    if bad:
        sys.exit("\n".join(bad))
    print(f"notebook checks ok ({len(list(root.glob('*.ipynb')))} notebooks)")


if __name__ == "__main__":
    main()
