"""docs/learning_path.md and the exercise lists of docs/teachers_guide.md are generated from the chapters by
tools/learning_path.py: they must be up to date, and every exercise the guides name must exist."""
import re
import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import learning_path  # noqa: E402


def test_pages_are_up_to_date():
    "After changing a chapter's first cell or its exercises, run `python tools/learning_path.py`."
    assert learning_path.main(["--check"]) == 0, "run: python tools/learning_path.py"


def test_exercises_named_in_the_guides_exist():
    known = {e for ch in learning_path.read_chapters() for e, _ in ch.exercises}
    for page in ("docs/teachers_guide.md", "docs/mappers_guide.md"):
        path = ROOT / page
        if not path.exists():
            continue
        text = re.sub(r"<!-- exercises:.*?<!-- /exercises -->", "", path.read_text(), flags=re.S)
        named = set(re.findall(r"\*\*(\d+\.\d+)\*\*", text))
        assert named <= known, f"{page} names exercises no chapter has: {sorted(named - known)}"
