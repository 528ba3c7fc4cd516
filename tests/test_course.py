"""The course's shape: every chapter opens with its goals, keeps its cells short, cites only the repo, shows a
figure, ends with checked exercises, and is committed executed with outputs that match its code."""
import json
import re
import statistics
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
sys.path.insert(0, str(ROOT / "tools"))
from check_notebooks import staleness  # noqa: E402
from run_notebooks import code_fingerprint, output_counts  # noqa: E402

CHAPTERS = sorted(p for p in NBS.glob("[0-9][0-9]_*.ipynb") if int(p.name[:2]) < 90)
OUTSIDE = re.compile(r"\.\./shared|(?<!90_)peer_data|EVALUATION\.md|mug_reference|§")


def cells(path, kind=None):
    nb = json.loads(path.read_text())
    for c in nb["cells"]:
        if kind in (None, c["cell_type"]):
            yield c, (c["source"] if isinstance(c["source"], str) else "".join(c["source"]))


def code_lengths(path):
    return [sum(1 for l in src.splitlines() if not l.lstrip().startswith("#|")) for _, src in cells(path, "code")]


def test_the_course_is_numbered_in_order():
    nums = [p.name[:2] for p in CHAPTERS]
    assert nums == [f"{i:02d}" for i in range(len(nums))], nums


@pytest.mark.parametrize("nb", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_opens_with_goals_prerequisites_and_time(nb):
    first = next(cells(nb, "markdown"))[1]
    assert first.startswith(f"# {nb.name[:2]} · "), first[:60]
    for label in ("**You will be able to:**", "**Prerequisites:**", "**Time:**"):
        assert label in first, f"{nb.name}: the first cell lacks {label}"
    prereq = re.search(r"\*\*Prerequisites:\*\*(.*)", first).group(1)
    for name in re.findall(r"\b(\d\d)_\w+", prereq):
        assert name < nb.name[:2], f"{nb.name} needs a later chapter {name}"


@pytest.mark.parametrize("nb", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_code_cells_are_short(nb):
    lengths = code_lengths(nb)
    assert statistics.median(lengths) <= 8, f"{nb.name}: median {statistics.median(lengths)} lines"
    long = [n for n in lengths if n > 30]
    assert not long, f"{nb.name}: cells of {long} lines (limit 30)"


@pytest.mark.parametrize("nb", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_cites_only_the_repo(nb):
    hits = [m.group(0) for _, src in cells(nb) for m in OUTSIDE.finditer(src)]
    assert not hits, f"{nb.name} refers outside the repo: {sorted(set(hits))}"
    for _, src in cells(nb, "markdown"):
        for link in re.findall(r"\]\(((?!https?:|#|mailto:)[^)\s#]+)", src):
            assert (NBS / link).exists(), f"{nb.name}: broken link {link}"


@pytest.mark.parametrize("nb", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_shows_a_figure_and_ends_with_checked_exercises(nb):
    nbj = json.loads(nb.read_text())
    assert output_counts(nbj)["images"] >= 1, f"{nb.name}: no figure in its saved outputs"
    md = "\n".join(src for _, src in cells(nb, "markdown"))
    assert "## Exercises" in md, f"{nb.name}: no Exercises section"
    code = "\n".join(src for _, src in cells(nb, "code"))
    assert re.search(r"check\(\"\d+\.\d+\"", code), f"{nb.name}: no exercise calls check(...)"


def test_staleness_check_catches_changed_code_and_stripped_outputs():
    nb = json.loads((NBS / "99_checks.ipynb").read_text())
    rec = {"x.ipynb": {"code": code_fingerprint(nb), **output_counts(nb)}}
    assert not list(staleness(Path("x.ipynb"), nb, rec))
    assert list(staleness(Path("y.ipynb"), nb, rec)), "a notebook never executed must be reported"
    edited = json.loads(json.dumps(nb))
    next(c for c in edited["cells"] if c["cell_type"] == "code")["source"] += "\nprint(1)"
    assert any("stale" in m for m in staleness(Path("x.ipynb"), edited, rec))
    stripped = json.loads(json.dumps(nb))
    for c in stripped["cells"]: c["outputs"] = [] if c["cell_type"] == "code" else c.get("outputs")
    assert any("stripped" in m for m in staleness(Path("x.ipynb"), stripped, rec))
