"""The helpers in tools/: offset estimation for the real-music comparison, the compat fixture maker's guard."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

from fof import estimate_offset  # noqa: E402
from mug_nb.osu import Note  # noqa: E402
from mug_nb.synth import chart_for_song, synth_song  # noqa: E402


@pytest.fixture(scope="module")
def song():
    return synth_song(1, duration=20.0)


@pytest.mark.parametrize("shift", [0, -40, 60])
def test_estimate_offset_finds_a_known_shift(song, shift):
    "A chart moved by `shift` ms is put back within 12 ms (the short window reads a few ms late, never ~30)."
    notes = [Note(n.time + shift, n.column, None) for n in chart_for_song(song, "Normal").notes]
    lag = estimate_offset(notes, song.wave, song.sr, max_lag_ms=150)
    assert abs(lag + shift) <= 12, lag


def test_default_window_reads_later_than_ours(song):
    notes = chart_for_song(song, "Normal").notes
    assert estimate_offset(notes, song.wave, song.sr, 150, 64, 2048) > estimate_offset(notes, song.wave, song.sr, 150) + 5


def test_make_compat_fixture_refuses_a_folder_that_is_not_the_original(tmp_path, monkeypatch):
    "tools/make_compat_fixture.py names what is missing before importing anything from the folder it is given."
    import make_compat_fixture
    monkeypatch.setattr(sys, "argv", ["make_compat_fixture.py", "--original", str(tmp_path), "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match=r"not a checkout of Keytoyze/Mug-Diffusion.*mug/diffusion/unet\.py"):
        make_compat_fixture.main()
    assert str(tmp_path) not in sys.path and not list(tmp_path.iterdir())
