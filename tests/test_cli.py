"""The `mug-nb` console script: output formats and one-line errors."""
import json
import subprocess
import sys

import pytest

from mug_nb.cli import main


def run(*args):
    return subprocess.run([sys.executable, "-c", "import sys; from mug_nb.cli import main; sys.exit(main())", *args],
                          capture_output=True, text=True)


def test_info_json(samples):
    chart = sorted((samples / "charts").glob("*.osu"))[0]
    r = run("info", str(chart), "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["key_count"] == 4 and info["notes"] > 0
    assert {"star_rating", "skillsets", "prompt"} <= set(info)


def test_info_text(samples, capsys):
    chart = sorted((samples / "charts").glob("*.osu"))[0]
    assert main(["info", str(chart), "--no-features"]) == 0
    out = capsys.readouterr().out
    assert "key_count" in out and "holds" in out


@pytest.mark.parametrize("content", [None, "osu file format v14\n[General]\nMode: 0\n[HitObjects]\n256,192,0,1,0\n",
                                     "not a chart at all"])
def test_bad_chart_is_one_line_error(tmp_path, content):
    path = tmp_path / "bad.osu"
    if content is not None:
        path.write_text(content)
    r = run("info", str(path))
    assert r.returncode == 2
    assert r.stderr.startswith("mug-nb: error:") and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr
