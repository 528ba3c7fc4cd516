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
