"""Shared test fixtures: where the project is, and the optional peer data beside it."""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data_samples"
SHARED = ROOT.parent / "shared"
PEER = SHARED / "peer_data"


@pytest.fixture(scope="session")
def root():
    return ROOT


@pytest.fixture(scope="session")
def samples():
    return SAMPLES


@pytest.fixture(scope="session")
def peer_data():
    """`../shared/peer_data`, or skip the test when it is not there."""
    if not PEER.is_dir():
        pytest.skip("../shared/peer_data is not available")
    return PEER


@pytest.fixture(scope="session")
def shared_reference():
    """`../shared/reference`, or skip."""
    ref = SHARED / "reference"
    if not ref.is_dir():
        pytest.skip("../shared/reference is not available")
    return ref


@pytest.fixture(scope="session")
def compat_golden(shared_reference):
    """`(state_dict, outputs)` of `../shared/reference/compat_golden` (the original code's checkpoint and its
    recorded outputs), loaded once per session and safely (`weights_only`); skip when absent."""
    torch = pytest.importorskip("torch")
    g = shared_reference / "compat_golden"
    if not (g / "golden.pt").exists():
        pytest.skip("compat_golden is not available")
    sd = torch.load(g / "model.ckpt", weights_only=True, map_location="cpu")["state_dict"]
    return sd, torch.load(g / "golden.pt", weights_only=True, map_location="cpu")
