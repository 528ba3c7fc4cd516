"""Write docs/learning_path.md from the chapters' first cells, and refresh the exercise lists in docs/teachers_guide.md,
so neither drifts from the notebooks.

Each chapter opens with `# NN · Title`, a one-line summary, `**You will be able to:**` (bullets),
`**Prerequisites:**` and `**Time:** about N minutes`; its `## Exercises` has `**Exercise N.k** — ...` cells.

    python tools/learning_path.py           # rewrite the pages
    python tools/learning_path.py --check   # exit 1 if a page is out of date (tests/test_learning_path.py)
"""
import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATH_PAGE = Path("docs/learning_path.md")
GUIDE = Path("docs/teachers_guide.md")
CHAPTER = re.compile(r"^(\d\d)_\w+$")
LABEL = re.compile(r"^\*\*([^*]+?):?\*\*:?\s*(.*)$")
EXERCISE = re.compile(r"\*\*Exercise\s+(\d+\.\d+)\*\*\s*[—–-]*\s*(.*)", re.S)
BLOCK = re.compile(r"(<!-- exercises: ([\w ]+) -->\n)(.*?)(<!-- /exercises -->)", re.S)

# the three paths through the course (chapter file names); the learner's path is every chapter in order
MAPPER = ["00_primer", "19_generate", "21_widgets", "22_cli"]
RESEARCHER = ["00_primer", "02_chart", "03_features", "04_audio", "06_data", "07_vae", "08_diffusion", "12_model",
              "14_train", "15_refiner", "18_control", "20_evaluate", "90_peer_data"]


@dataclass
class Chapter:
    name: str                                    # file name without .ipynb, e.g. "04_audio"
    title: str = ""
    summary: str = ""
    able: list = field(default_factory=list)     # "You will be able to" bullets
    prereq_text: str = ""
    prereqs: list = field(default_factory=list)  # chapter names named in the prerequisites
    minutes: int | None = None
    exercises: list = field(default_factory=list)  # (id, first sentence)

    @property
    def num(self) -> int:
        return int(self.name[:2])

    @property
    def appendix(self) -> bool:
        return self.num >= 90


def _md_cells(nb: Path) -> list[str]:
    cells = json.loads(nb.read_text(encoding="utf-8")).get("cells", [])
    return ["".join(c.get("source", "")) for c in cells if c.get("cell_type") == "markdown"]


def _first_sentence(text: str, limit: int = 140) -> str:
    "The exercise's first sentence (two when the first is only a title, like 'Zero-order hold.'), cut at `limit`."
    text = " ".join(text.split())
    ends = [m.end(1) for m in re.finditer(r"([.?])(\s|$)", text)] or [len(text)]
    s = text[:ends[0]] if ends[0] >= 50 or len(ends) == 1 else text[:ends[1]]
    if len(s) > limit:
        s = s[:limit].rsplit(" ", 1)[0]
        if s.count("$") % 2:                     # never cut a formula in two
            s = s[:s.rfind("$")].rstrip()
        if s.count("`") % 2:                     # nor a code span
            s = s[:s.rfind("`")].rstrip()
        s = s.rstrip(",;:") + " …"
    return s


def parse_header(ch: Chapter, text: str, names: set[str]):
    "Fill title, summary, bullets, prerequisites and time from the chapter's first cell."
    label, lines = None, text.splitlines()
    for line in lines:
        s = line.strip()
        if s.startswith("# ") and not ch.title:
            ch.title = re.sub(r"^\d\d\s*[·.:-]\s*", "", s[2:].strip())
            continue
        m = LABEL.match(s)
        if m:
            label, rest = m.group(1).lower(), m.group(2).strip()
            if label.startswith("prerequisite"):
                ch.prereq_text = rest
            elif label.startswith("time"):
                ch.prereq_text = ch.prereq_text
                t = re.search(r"(\d+)\s*(?:min|minutes)", rest) or re.search(r"(\d+)", rest)
                hours = re.search(r"(\d+(?:\.\d+)?)\s*h(?:ours?)?\b", rest)
                ch.minutes = int(t.group(1)) if t else (round(float(hours.group(1)) * 60) if hours else None)
            continue
        if not s:
            continue
        if label is None and ch.title and not ch.summary and not s.startswith("#"):
            ch.summary = s.lstrip("> ").strip()
        elif label and label.startswith("you will be able") and re.match(r"^[-*]\s+", s):
            ch.able.append(re.sub(r"^[-*]\s+", "", s).rstrip(";,. ") )
        elif label and label.startswith("you will be able") and ch.able and line.startswith((" ", "\t")):
            ch.able[-1] += " " + s.rstrip(";,. ")
        elif label and label.startswith("prerequisite"):
            ch.prereq_text = (ch.prereq_text + " " + s).strip()
    ch.prereqs = [n for n in dict.fromkeys(re.findall(r"\b(\d\d_[a-z0-9_]+)\b", ch.prereq_text)) if n in names]


def read_chapters(nbs: Path = ROOT / "nbs") -> list[Chapter]:
    "Every chapter and appendix notebook, in order, with what its first cell and its exercises say."
    found = sorted(p for p in nbs.glob("*.ipynb") if CHAPTER.match(p.stem))
    names = {p.stem for p in found}
    out = []
    for nb in found:
        ch = Chapter(nb.stem)
        cells = _md_cells(nb)
        head = next((c for c in cells if re.match(rf"\s*# {nb.stem[:2]}\b", c)), None)
        if head is None:
            head = next((c for c in cells if c.lstrip().startswith("# ")), "")
        parse_header(ch, head, names)
        ch.title = ch.title or nb.stem.split("_", 1)[1].replace("_", " ")
        for c in cells:
            for part in re.split(r"(?=\*\*Exercise\s+\d+\.\d+\*\*)", c):
                m = EXERCISE.match(part.strip())
                if m:
                    ch.exercises.append((m.group(1), _first_sentence(m.group(2))))
        out.append(ch)
    return out


def _link(ch: Chapter, prefix="../nbs/") -> str:
    return f"[{ch.name[:2]} · {ch.title}]({prefix}{ch.name}.ipynb)"


def _minutes(chs) -> str:
    known = [c.minutes for c in chs if c.minutes]
    if not known:
        return "time not stated"
    total = sum(known)
    text = f"about {total} minutes" if total < 120 else f"about {total / 60:.1f} hours".replace(".0 ", " ")
    missing = len(chs) - len(known)
    return text + (f" (+{missing} chapter{'s' * (missing > 1)} without a stated time)" if missing else "")


def _path(names: list[str], by: dict, outside_prereqs: bool = True) -> str:
    chs = [by[n] for n in names if n in by]
    steps = " → ".join(f"[{c.name[:2]}](../nbs/{c.name}.ipynb)" for c in chs)
    inside = set(names)
    outside = sorted({p for c in chs for p in c.prereqs if p not in inside})
    line = f"{steps} — {_minutes(chs)}"
    if outside and outside_prereqs:
        line += ". Their prerequisites outside the path (skim as needed): " + ", ".join(
            f"[{p}](../nbs/{p}.ipynb)" for p in outside)
    missing = [n for n in names if n not in by]
    if missing:
        line += f". Not in this checkout yet: {', '.join(missing)}"
    return line


def learning_path_md(chs: list[Chapter]) -> str:
    by = {c.name: c for c in chs}
    course = [c for c in chs if not c.appendix]
    appendix = [c for c in chs if c.appendix]
    L = ["<!-- generated by tools/learning_path.py from the chapters' first cells; edit the notebooks, then run it -->",
         "", "# Learning path", "",
         f"The course is {len(course)} chapters, each a notebook that builds one module of `mug_nb` and tests it as it goes, "
         f"{_minutes(course)} in all. Every chapter opens with what you will be able to do, what to read first and how "
         "long it takes; this page collects them. Each ends with exercises that check themselves "
         "(`check(\"N.k\", answer)`); worked solutions are in `solutions/`.", "",
         "## Three paths", "",
         "* **Mapper** — generate charts for your own songs, steer them, and use the command line: "
         + _path(MAPPER, by, outside_prereqs=False) + ". These chapters name earlier ones as prerequisites for how "
         "generation works inside; to use it you need only the primer, then the [mapper's guide](mappers_guide.md).",
         "* **Learner** — the whole model, from the file format to the sampler, in order: every chapter below, "
         f"{_minutes(course)}.",
         "* **Researcher** — data, model, training, control and evaluation, then real charts: " + _path(RESEARCHER, by)
         + ". Read 09–11 and 13 when you change the architecture or the sampler.", "",
         "## The chapters", "",
         "| chapter | time | prerequisites |", "|---|---|---|"]
    for c in course:
        pre = ", ".join(f"[{p}](../nbs/{p}.ipynb)" for p in c.prereqs) or (c.prereq_text or "—")
        L.append(f"| {_link(c)} | {f'{c.minutes} min' if c.minutes else '—'} | {pre} |")
    L.append("")
    for c in course + appendix:
        L += [f"### {c.name[:2]} · {c.title}", ""]
        if c.summary:
            L += [c.summary, ""]
        meta = [f"[open the chapter](../nbs/{c.name}.ipynb)"]
        if c.minutes:
            meta.append(f"about {c.minutes} minutes")
        if c.prereq_text:
            meta.append("prerequisites: " + (", ".join(f"`{p}`" for p in c.prereqs) if c.prereqs and
                                             len(c.prereq_text) < 60 else c.prereq_text))
        L += [" · ".join(meta), ""]
        if c.able:
            L += ["You will be able to:", ""] + [f"- {a}" for a in c.able] + [""]
        if c.exercises:
            L += ["Exercises: " + ", ".join(e for e, _ in c.exercises), ""]
    if appendix:
        L.insert(L.index("## The chapters"), "")
        L.insert(L.index("## The chapters"), "The appendix " + ", ".join(_link(c) for c in appendix)
                 + " holds what needs data outside the repository, and the checks behind the exercises.")
        L.insert(L.index("## The chapters"), "")
    return re.sub(r"\n{3,}", "\n\n", "\n".join(L)).rstrip() + "\n"


def exercise_block(names: list[str], by: dict) -> str:
    lines = []
    for n in names:
        c = by.get(n)
        if c is None:
            lines.append(f"- `{n}`: not in this checkout yet")
            continue
        if not c.exercises:
            lines.append(f"- {_link(c)}: no exercises yet")
            continue
        for e, text in c.exercises:
            lines.append(f"- **{e}** ({n}) — {text}")
    return "\n".join(lines) + "\n"


def refresh_guide(text: str, chs: list[Chapter]) -> str:
    by = {c.name: c for c in chs}

    def fill(m):
        names = m.group(2).split()
        names = [next((c.name for c in chs if c.name.startswith(n)), n) for n in names]
        return m.group(1) + exercise_block(names, by) + m.group(4)
    return BLOCK.sub(fill, text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a page is out of date; write nothing")
    args = ap.parse_args(argv)
    chs = read_chapters()
    want = {PATH_PAGE: learning_path_md(chs)}
    if (ROOT / GUIDE).exists():
        want[GUIDE] = refresh_guide((ROOT / GUIDE).read_text(encoding="utf-8"), chs)
    stale = [p for p, t in want.items() if not (ROOT / p).exists() or (ROOT / p).read_text(encoding="utf-8") != t]
    if args.check:
        for p in stale:
            print(f"{p} is out of date: run python tools/learning_path.py")
        return 1 if stale else 0
    for p in stale:
        (ROOT / p).parent.mkdir(parents=True, exist_ok=True)
        (ROOT / p).write_text(want[p], encoding="utf-8")
        print("wrote", p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
