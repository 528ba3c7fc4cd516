"""Shared test fixtures: where the project is, the committed compat fixture, and the optional peer data beside it."""
import gzip
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data_samples"
SHARED = ROOT.parent / "shared"
PEER = SHARED / "peer_data"
COMPAT = ROOT / "tests" / "compat"


def load_compat(folder=COMPAT):
    """The committed compat fixture (tests/compat/README.md): the original code's state dict, inputs and outputs for
    a reduced config. Read with safetensors (numbers only, nothing is unpickled); float16 tensors (weights and inputs
    stored losslessly at half size) come back as float32; `name.0, name.1, ...` come back as a list `name`."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file
    f32 = lambda t: t.float() if t.dtype == torch.float16 else t
    sd = {k: f32(v) for k, v in load_file(folder / "model.safetensors").items()}
    golden, lists = {}, {}
    for k, v in load_file(folder / "golden.safetensors").items():
        base, _, i = k.rpartition(".")
        if i.isdigit(): lists.setdefault(base, {})[int(i)] = f32(v)
        else: golden[k] = f32(v)
    golden.update({k: [d[i] for i in range(len(d))] for k, d in lists.items()})
    with safe_open(folder / "golden.safetensors", "pt") as f:
        meta = json.loads(f.metadata()["meta"])
    return SimpleNamespace(sd=sd, golden=golden, meta=meta, config=folder / "config.yaml", dir=folder)


def original_keys():
    "`[(name, '[shape]')]` of the released model's state dict, as the original builds it (tests/compat)."
    text = gzip.decompress((COMPAT / "original_state_dict_keys.txt.gz").read_bytes()).decode()
    return [tuple(line.split("\t")) for line in text.splitlines() if line.strip()]


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
def compat():
    """The committed compat fixture (`load_compat`): `.sd`, `.golden`, `.meta`, `.config` (the original's YAML)."""
    return load_compat()


@pytest.fixture(scope="session")
def compat_model(compat):
    """A function returning a fresh model built from the fixture's original YAML with its state dict loaded
    (S4 layers change state on a longer call, so every test that replays the fixture's order takes a fresh one)."""
    import yaml
    from mug_nb.model import build_model, config_from_original, load_state
    cfg = config_from_original(yaml.safe_load(compat.config.read_text()), str(compat.config))
    def make():
        m = build_model(cfg)
        report = load_state(m, compat.sd, strict=True, where="tests/compat/model.safetensors")
        assert report.ok, report
        return m.eval()
    return make


@pytest.fixture(scope="session")
def compat_golden(shared_reference):
    """`(state_dict, outputs)` of `../shared/reference/compat_golden` (a second, wider fixture made by the original
    code), loaded safely (`weights_only`); skip when absent. The committed `compat` fixture does not skip."""
    import torch
    g = shared_reference / "compat_golden"
    if not (g / "golden.pt").exists():
        pytest.skip("compat_golden is not available")
    sd = torch.load(g / "model.ckpt", weights_only=True, map_location="cpu")["state_dict"]
    return sd, torch.load(g / "golden.pt", weights_only=True, map_location="cpu")
