"""Build the course website from the executed notebooks: `python tools/build_site.py` writes `_site/`.

mkdocs + mkdocs-jupyter render the notebooks as they are committed (outputs saved; nothing is executed).
The pages are staged in a temporary folder that mirrors the repository (README.md as the home page, index.html, nbs/,
docs/, solutions/, MODEL_CARD.md, and every other repository file a page links to), so every relative link that
works on GitHub works on the site too. Navigation follows the course order. The site needs no network to be
viewed, except MathJax (from its CDN) to typeset the few formulas; without it they show as TeX source.

    python tools/build_site.py                 # -> _site/ ; open _site/index.html or serve it
    python tools/build_site.py --out /tmp/site --strict
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# nbconvert (used by mkdocs-jupyter, here and in the mkdocs process) finds its templates under sys.prefix; in a
# virtual environment over a system Python they live under the base prefix, so name both
os.environ["JUPYTER_PATH"] = os.pathsep.join([*filter(None, [os.environ.get("JUPYTER_PATH")]),
                                              *(str(Path(p) / "share" / "jupyter") for p in dict.fromkeys((sys.prefix, sys.base_prefix)))])
SITE_NAME = "mug_nb: MuG Diffusion, step by step"
# MathJax 2 typesets the formulas in a few chapters when the reader is online; offline they show as TeX source
MATHJAX = "https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/latest.js?config=TeX-AMS_CHTML-full,Safe"
CHAPTER = re.compile(r"^(\d\d)_\w+\.ipynb$")
APPENDIX_MIN = 90                       # nbs/90_... and up: appendix (99_checks: the exercise checks)
LINK = re.compile(r"""\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)|(?:src|href)\s*=\s*["']([^"']+)["']""")
PLACEHOLDER_CARD = """# Model card

The bundled model's card (`MODEL_CARD.md`) is not in this checkout yet.
"""


def title_of(path: Path) -> str:
    "The first `# ` heading of a notebook or markdown page (the file name without it)."
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
        texts = ["".join(c.get("source", "")) for c in cells if c.get("cell_type") == "markdown"]
    else:
        texts = [path.read_text(encoding="utf-8")]
    for text in texts:
        for line in text.splitlines():
            if line.startswith("# "):
                return re.sub(r"(?<!\w)[*_]+|[*_]+(?!\w)", "", line[2:].strip().replace("`", ""))
    return path.stem.replace("_", " ")


def chapters(nbs: Path) -> tuple[list[Path], list[Path]]:
    "The chapter notebooks (00–89) and the appendix (90–99), each in order."
    found = sorted(p for p in nbs.glob("*.ipynb") if CHAPTER.match(p.name))
    return ([p for p in found if int(p.name[:2]) < APPENDIX_MIN], [p for p in found if int(p.name[:2]) >= APPENDIX_MIN])


def page_links(path: Path) -> list[str]:
    "Relative link targets in a markdown page, or in the markdown cells of a notebook."
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
        text = "\n".join("".join(c.get("source", "")) for c in cells if c.get("cell_type") == "markdown")
    else:
        text = path.read_text(encoding="utf-8")
    out = []
    for m in LINK.finditer(text):
        target = (m.group(1) or m.group(2)).split("#")[0].split("?")[0]
        if target and not re.match(r"^[a-z][a-z0-9+.-]*:|^/|^data:", target, re.I):
            out.append(target)
    return out


def _copy(src: Path, dst: Path):
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)


def _clean_notebook(src: Path, dst: Path):
    "Copy a notebook without widget state (it would pull the widget manager from a CDN)."
    nb = json.loads(src.read_text(encoding="utf-8"))
    nb.get("metadata", {}).pop("widgets", None)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(json.dumps(nb), encoding="utf-8")


def stage(src: Path) -> tuple[dict, list[str]]:
    "Mirror the site's pages into `src`; return the nav and the notes on what was missing."
    notes = []
    _copy(ROOT / "README.md", src / "README.md")           # mkdocs serves it as index.html; links to it work
    pages = [src / "README.md"]
    ch, app = chapters(ROOT / "nbs")
    for nb in ch + app:
        try:
            _clean_notebook(nb, src / "nbs" / nb.name)
        except (ValueError, OSError) as e:            # a notebook being written right now, or broken JSON
            notes.append(f"{nb.name} left out: not a readable notebook ({e})")
            continue
        pages.append(src / "nbs" / nb.name)
    ch = [p for p in ch if (src / "nbs" / p.name).exists()]
    app = [p for p in app if (src / "nbs" / p.name).exists()]
    if (ROOT / "nbs" / "images").is_dir():
        shutil.copytree(ROOT / "nbs" / "images", src / "nbs" / "images", dirs_exist_ok=True)
    docs = sorted((ROOT / "docs").glob("*.md")) if (ROOT / "docs").is_dir() else []
    for d in docs:
        _copy(d, src / "docs" / d.name)
        pages.append(src / "docs" / d.name)
    sols = sorted((ROOT / "solutions").glob("[0-9]*.py")) if (ROOT / "solutions").is_dir() else []
    for s in sols:
        _copy(s, src / "solutions" / s.name)
    if (ROOT / "MODEL_CARD.md").exists():
        _copy(ROOT / "MODEL_CARD.md", src / "MODEL_CARD.md")
        pages.append(src / "MODEL_CARD.md")
    else:
        (src / "MODEL_CARD.md").write_text(PLACEHOLDER_CARD)
        notes.append("MODEL_CARD.md is missing: the site shows a placeholder page")
    # every other repository file a page links to (figures in benchmarks/, a script, a sample chart)
    for page in pages:
        for target in page_links(page):
            rel = (page.parent / target).resolve()
            try:
                rel = rel.relative_to(src.resolve())
            except ValueError:
                notes.append(f"{page.relative_to(src)} links outside the repository: {target}")
                continue
            orig = ROOT / rel
            if (src / rel).exists():
                continue
            if orig.is_file():
                _copy(orig, src / rel)
            elif not orig.exists():
                notes.append(f"{page.relative_to(src)} links to a missing file: {target}")
    nav = [{"Home": "README.md"}]
    if (src / "docs" / "learning_path.md").exists():
        nav.append({"Learning path": "docs/learning_path.md"})
    nav.append({"Chapters": [{title_of(p): f"nbs/{p.name}"} for p in ch]})
    if app:
        nav.append({"Appendix": [{title_of(p): f"nbs/{p.name}"} for p in app]})
    if sols:
        nav.append({"Solutions": [{s.stem: f"solutions/{s.name}"} for s in sols]})
    for name, label in [("teachers_guide", "Teacher's guide"), ("mappers_guide", "Mapper's guide")]:
        if (src / "docs" / f"{name}.md").exists():
            nav.append({label: f"docs/{name}.md"})
    nav.append({"Model card": "MODEL_CARD.md"})
    listed = {"learning_path", "teachers_guide", "mappers_guide"}
    nav.extend({title_of(d): f"docs/{d.name}"} for d in docs if d.stem not in listed)
    return nav, notes


def config(src: Path, out: Path, nav: list) -> dict:
    "The mkdocs configuration: material theme without web fonts, notebooks rendered as they are (no execution)."
    return {
        "site_name": SITE_NAME,
        "docs_dir": str(src),
        "site_dir": str(out),
        "use_directory_urls": False,            # pages are files: _site/index.html opens without a server
        "nav": nav,
        "theme": {"name": "material", "font": False, "features": ["navigation.footer", "navigation.top"],
                  "palette": {"primary": "indigo"}},
        "markdown_extensions": ["admonition", "tables", "attr_list", "md_in_html", {"toc": {"permalink": True}},
                                "pymdownx.superfences"],
        "plugins": ["search", {"mkdocs-jupyter": {
            "execute": False, "include": ["*.ipynb", "solutions/*.py"], "include_source": False,
            "ignore_h1_titles": True,  # titles from the nav (mkdocs-jupyter's drop code spans)
            "include_requirejs": False, "cache": False, "allow_errors": True,
            "no_prompt": True,         # the notebooks are saved without execution counts: 'In [ ]:' says nothing
            "custom_mathjax_url": MATHJAX}}],
        "validation": {"nav": {"omitted_files": "ignore"}, "links": {"not_found": "warn", "anchors": "ignore"}},
    }


def fix_notebook_links(out: Path) -> int:
    """Links in notebook pages (which mkdocs does not rewrite) to another notebook or a markdown page
    (`02_chart.ipynb`, `../MODEL_CARD.md`, `../README.md`) point at its page (`02_chart.html`, `../index.html`)."""
    n = 0

    def page_for(html: Path, target: str) -> str | None:
        stem = target.rsplit(".", 1)[0]
        cand = stem[: -len("README")] + "index" if stem.split("/")[-1] == "README" else stem
        return cand + ".html" if (html.parent / (cand + ".html")).exists() else None

    for html in out.rglob("*.html"):
        text = html.read_text(encoding="utf-8")

        def repl(m):
            nonlocal n
            new = page_for(html, m.group(2))
            if new is None:
                return m.group(0)
            n += 1
            return f'{m.group(1)}{new}{m.group(3) or ""}"'
        new = re.sub(r'(href=")((?![a-z]+:)[^"#?]+\.(?:ipynb|md))(#[^"]*)?"', repl, text)
        if new != text:
            html.write_text(new, encoding="utf-8")
    return n


def toc_ids(nb: Path) -> list[str]:
    "The anchors of a notebook's table of contents as mkdocs-jupyter writes them, in order."
    from mkdocs_jupyter.plugin import get_nb_toc
    toc, _ = get_nb_toc(str(nb), 6)
    ids = []

    def walk(items):
        for it in items:
            ids.append(it.id)
            walk(it.children)
    walk(toc.items)
    return ids


def fix_toc_anchors(html: Path, toc: list[str]) -> int:
    """mkdocs-jupyter slugs the table of contents with markdown's rules and the headings with nbconvert's, which
    differ for headings with code or punctuation (`## `read_osu``: `#_1` against `id="read_osu"`), and its entries
    lose their code spans ("The forward process:" for "The forward process: `q_sample`"). The two lists come from
    the same headings in the same order, so the n-th entry is pointed at the n-th heading and given its text."""
    text = html.read_text(encoding="utf-8")
    body = text[text.find('class="md-content"'):]
    heads = re.findall(r'<h[1-6][^>]*\sid="([^"]+)"[^>]*>(.*?)</h[1-6]>', body, re.S)
    if len(heads) != len(toc):
        return 0
    remap = {t: h for t, (h, _) in zip(toc, heads) if t != h}
    label = {h: re.sub(r"<[^>]+>", "", re.sub(r'<a class="anchor-link".*?</a>', "", inner)).strip()
             for h, inner in heads}
    new = re.sub(r'href="#([^"]+)"', lambda m: f'href="#{remap.get(m.group(1), m.group(1))}"', text)

    def relabel(m):
        t = label.get(m.group(2))
        return f"{m.group(1)}{t}{m.group(3)}" if t else m.group(0)
    new = re.sub(r'(<a href="#([^"]+)" class="md-nav__link">\s*<span class="md-ellipsis">)(?:(?!</span>).)*?(\s*</span>)',
                 relabel, new, flags=re.S)
    if new != text:
        html.write_text(new, encoding="utf-8")
    return len(remap)


def build(out: Path, strict: bool = False, keep_stage: Path | None = None, quiet: bool = False) -> list[str]:
    "Stage the pages, run mkdocs, fix notebook-to-notebook links; return the notes on what was missing."
    import yaml
    out = Path(out).resolve()
    tmp = Path(tempfile.mkdtemp(prefix="mug_nb_site_"))
    try:
        src = tmp / "src"
        src.mkdir()
        nav, notes = stage(src)
        cfg = tmp / "mkdocs.yml"
        cfg.write_text(yaml.safe_dump(config(src, out, nav), sort_keys=False, allow_unicode=True))
        cmd = [sys.executable, "-m", "mkdocs", "build", "--clean", "-f", str(cfg)] + (["--strict"] if strict else [])
        if quiet:
            cmd.append("--quiet")
        env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}   # material's notice about its successor
        r = subprocess.run(cmd, cwd=tmp, env=env)
        if r.returncode:
            raise SystemExit(f"mkdocs build failed (exit {r.returncode})")
        fix_notebook_links(out)
        for nb in src.glob("nbs/*.ipynb"):
            page = out / "nbs" / (nb.stem + ".html")
            if page.exists():
                fix_toc_anchors(page, toc_ids(nb))
        if keep_stage:
            shutil.copytree(tmp, keep_stage, dirs_exist_ok=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return notes


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "_site"), help="site folder (default: _site/)")
    ap.add_argument("--strict", action="store_true", help="fail on any mkdocs warning (a broken link, a missing page)")
    ap.add_argument("--keep-stage", metavar="DIR", help="also keep the staged pages and mkdocs.yml in DIR (debugging)")
    ap.add_argument("--quiet", action="store_true", help="only mkdocs' warnings")
    args = ap.parse_args(argv)
    notes = build(Path(args.out), args.strict, Path(args.keep_stage) if args.keep_stage else None, args.quiet)
    for n in notes:
        print("note:", n)
    print(f"site written to {args.out} (open index.html, or: python -m http.server -d {args.out})")


if __name__ == "__main__":
    main()
