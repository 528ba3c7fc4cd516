"""Every exercise in the course has a check, and its worked solution in `solutions/` passes that check."""
import importlib.util
import json
import re
from pathlib import Path

import pytest

from mug_nb.checks import CHECKS, verdict

ROOT = Path(__file__).resolve().parents[1]
CALL = re.compile(r"check\(\"(\d+\.\d+)\"")


def solutions() -> dict:
    found = {}
    for path in sorted((ROOT / "solutions").glob("[0-9][0-9]_*.py")):
        spec = importlib.util.spec_from_file_location(f"solutions_{path.stem}", path)
        mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
        for k, v in mod.SOLUTIONS.items():
            assert k not in found, f"exercise {k} solved twice"
            found[k] = v
    return found


def asked() -> set:
    "The exercise ids the chapters call `check` with."
    ids = set()
    for nb in (ROOT / "nbs").glob("[0-9][0-9]_*.ipynb"):
        if int(nb.name[:2]) >= 90: continue   # appendices (99_checks demonstrates `check` on a toy)
        for c in json.loads(nb.read_text())["cells"]:
            if c["cell_type"] == "code":
                ids |= set(CALL.findall(c["source"] if isinstance(c["source"], str) else "".join(c["source"])))
    return ids


SOLUTIONS = solutions()


def test_every_exercise_has_a_check_and_a_solution():
    ids = asked()
    assert ids, "no exercises found"
    assert not ids - set(CHECKS), f"exercises without a check: {sorted(ids - set(CHECKS))}"
    assert not set(CHECKS) - ids, f"checks no chapter asks: {sorted(set(CHECKS) - ids)}"
    assert not ids - set(SOLUTIONS), f"exercises without a solution: {sorted(ids - set(SOLUTIONS))}"


@pytest.mark.parametrize("id", sorted(CHECKS))
def test_solution_passes_its_check(id):
    ok, msg = verdict(id, SOLUTIONS[id])
    assert ok, f"solution of {id}: {msg}"


@pytest.mark.parametrize("id", sorted(CHECKS))
def test_an_unanswered_stub_does_not_pass(id):
    def stub(*args, **kwargs): raise NotImplementedError
    assert not verdict(id, stub)[0]
    assert not verdict(id, None)[0]
