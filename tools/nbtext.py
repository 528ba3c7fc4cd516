"""Edit notebooks as plain text: convert between `.ipynb` and a percent-format `.py` file.

    python tools/nbtext.py to-py nbs/01_osu.ipynb draft.py   # notebook -> text
    python tools/nbtext.py to-nb draft.py nbs/01_osu.ipynb   # text -> notebook (outputs dropped)

Text format: a line `# %%` starts a code cell, `# %% [markdown]` a markdown cell whose lines
are written as `# ` comments. Everything before the first marker is ignored.
"""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

KERNEL = {"display_name": "Python 3", "language": "python", "name": "python3"}


def _cell(kind, lines):
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    if kind == "markdown":
        lines = [l[2:] if l.startswith("# ") else l.lstrip("#") for l in lines]
    src = "\n".join(lines)
    cell = {"cell_type": kind, "metadata": {}, "source": src}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def py_to_nb(text, name="notebook"):
    cells, kind, buf = [], None, []
    for line in text.splitlines():
        if line.startswith("# %%"):
            if kind is not None:
                cells.append(_cell(kind, buf))
            kind, buf = ("markdown" if "[markdown]" in line else "code"), []
        elif kind is not None:
            buf.append(line)
    if kind is not None:
        cells.append(_cell(kind, buf))
    cells = [c for c in cells if c["source"]]
    for i, c in enumerate(cells):  # stable ids, so that re-converting an unchanged cell changes nothing
        c["id"] = hashlib.sha1(f"{name}:{i}".encode()).hexdigest()[:8]
    return {"cells": cells,
            "metadata": {"kernelspec": KERNEL, "language_info": {"name": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def nb_to_py(nb):
    out = []
    for c in nb["cells"]:
        src = c["source"] if isinstance(c["source"], str) else "".join(c["source"])
        if c["cell_type"] == "markdown":
            out.append("# %% [markdown]\n" + "\n".join(("# " + l) if l else "#" for l in src.splitlines()))
        else:
            out.append("# %%\n" + src)
    return "\n\n".join(out) + "\n"


def main(argv=sys.argv[1:]):
    if len(argv) != 3 or argv[0] not in ("to-py", "to-nb"):
        sys.exit(__doc__)
    cmd, src, dst = argv
    if cmd == "to-nb":
        nb = py_to_nb(Path(src).read_text(), Path(dst).stem)
        Path(dst).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        subprocess.run(["nbdev-clean", "--fname", dst], check=True)  # nbdev's canonical layout
    else:
        Path(dst).write_text(nb_to_py(json.loads(Path(src).read_text())))


if __name__ == "__main__":
    main()
