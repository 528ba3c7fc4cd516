"""Build README.md from nbs/index.ipynb without Quarto.

    python tools/make_readme.py          # write README.md
    python tools/make_readme.py --check  # exit 1 if README.md is out of date

Markdown cells are copied; code cells become ```python blocks; small text outputs become ``` blocks;
image outputs are referenced from files under nbs/ (the notebook links them itself, so nothing is embedded).
Cells marked `#| hide` and nbdev directives are left out.
"""
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def render(nb):
    parts = []
    for cell in nb["cells"]:
        src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        lines = src.splitlines()
        if any(l.strip() in ("#| hide", "#|hide") for l in lines):
            continue
        body = "\n".join(l for l in lines if not l.startswith("#|")).strip()
        if cell["cell_type"] == "markdown":  # links are relative to nbs/; the README sits one level up
            parts.append(re.sub(r"\]\((?!https?:|#|/)(\.\./)?", lambda m: "](" if m.group(1) else "](nbs/", body))
        elif body:
            body = body.replace('"../', '"')  # paths in code are relative to nbs/ too
            parts.append(f"```python\n{body}\n```")
            for out in cell.get("outputs", []):
                text = out.get("text") or out.get("data", {}).get("text/plain")
                if out.get("output_type") == "error" or not text:
                    continue
                text = text if isinstance(text, str) else "".join(text)
                parts.append(f"```\n{text.rstrip()}\n```")
    return "<!-- generated from nbs/index.ipynb by tools/make_readme.py; edit the notebook -->\n\n" + \
        "\n\n".join(p for p in parts if p) + "\n"


def main(argv=sys.argv[1:]):
    nb = json.loads((ROOT / "nbs" / "index.ipynb").read_text())
    text = render(nb)
    readme = ROOT / "README.md"
    if "--check" in argv:
        if not readme.exists() or readme.read_text() != text:
            sys.exit("README.md is out of date: run python tools/make_readme.py")
        print("README.md is up to date")
    else:
        readme.write_text(text)
        print(f"wrote {readme.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
