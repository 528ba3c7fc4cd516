"""Replace (or add) one tagged block of cells in a shared notebook, under a lock.

    python tools/nbblock.py nbs/99_checks.ipynb 03_features block.py

`block.py` is percent-format text (`# %% [markdown]` / `# %%`, see tools/nbtext.py). A block is a run of cells
that starts with a markdown cell whose first line is `## <tag>` and ends before the next such heading; blocks
are kept in tag order, after the notebook's preamble. Several people can run this at once on one notebook.
"""
import fcntl
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nbtext import py_to_nb  # noqa: E402

HEAD = re.compile(r"^## (\d\d_\w+)")


def block_tag(cell):
    "The tag of a block's heading cell, or None."
    src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
    m = HEAD.match(src) if cell["cell_type"] == "markdown" else None
    return m.group(1) if m else None


def put_block(nb, tag, cells):
    "Return `nb`'s cells with the block `tag` replaced by `cells` (added in tag order if new)."
    pre, blocks, cur = [], {}, None
    for c in nb["cells"]:
        cur = block_tag(c) or cur
        (blocks.setdefault(cur, []) if cur else pre).append(c)
    blocks[tag] = cells
    return pre + [c for t in sorted(blocks) for c in blocks[t]]


def main(argv=sys.argv[1:]):
    if len(argv) != 3:
        sys.exit(__doc__)
    path, tag, src = Path(argv[0]), argv[1], Path(argv[2])
    if not re.fullmatch(r"\d\d_\w+", tag):
        sys.exit(f"tag {tag!r}: expected a chapter name like 03_features")
    cells = py_to_nb(src.read_text(), tag)["cells"]
    if not cells or block_tag(cells[0]) != tag:
        cells.insert(0, {"cell_type": "markdown", "metadata": {}, "source": f"## {tag}"})
    for i, c in enumerate(cells):
        c["id"] = hashlib.sha1(f"{tag}:{i}".encode()).hexdigest()[:8]
    with open("/tmp/mug_nb_nbblock.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        nb = json.loads(path.read_text())
        nb["cells"] = put_block(nb, tag, cells)
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        subprocess.run(["nbdev-clean", "--fname", str(path)], check=True)
    print(f"{path}: block {tag} has {len(cells)} cells")


if __name__ == "__main__":
    main()
