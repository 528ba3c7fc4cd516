"""Run every notebook in `nbs/` top to bottom, one test each (cells flagged `#| notest`/`#| slow` skipped)."""
import os
from pathlib import Path

import pytest
from nbdev.config import get_config
from nbdev.doclinks import nbglob
from nbdev.test import test_nb as run_nb  # alias: pytest would collect a name starting with test_

CFG = get_config()
FLAGS = os.environ.get("NB_FLAGS", "").split()  # NB_FLAGS=slow also runs `#| slow` cells
SKIP = CFG.tst_flags.split() if isinstance(CFG.tst_flags, str) else list(CFG.tst_flags)
NBS = sorted(nbglob(CFG.nbs_path, as_path=True))
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]   # a whole notebook; each cell also has cell_timeout


@pytest.mark.parametrize("nb", NBS, ids=[p.name for p in NBS])
def test_notebook(nb: Path):
    ok, secs = run_nb(nb, skip_flags=SKIP, force_flags=FLAGS, basepath=CFG.config_path,
                      cell_timeout=CFG.cell_timeout)
    assert ok, f"{nb.name} failed (see stderr above)"
