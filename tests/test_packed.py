"""Linear layers and Winograd products with oneDNN-packed weights: the same numbers as F.linear / Conv1d,
the packed copy rebuilt when the weight changes, the plain path in training, autograd, float64 and
when the packing ops are missing."""
import copy

import pytest
import torch
import torch.nn.functional as F

from mug_nb.encoders import CrossAttention
import mug_nb.fast as fast
from mug_nb.fast import (PackedLinear, PackedPointwiseConv1d, PointwiseConv1d, pointwise_as_matmul, packed_weights,
                         onednn_packing, packable, WinogradConv1d, winograd_convs, winograd_weight, winograd_packed,
                         winograd_conv1d, optimize_for_inference)

torch.set_num_threads(1)
needs_onednn = pytest.mark.skipif(not onednn_packing(), reason="this PyTorch has no oneDNN weight packing")


def pack(m):
    "The packed rewrite of one layer (a Linear or a PointwiseConv1d)."
    return packed_weights("", m)


def close(a, b, rel=1e-5):
    return a.shape == b.shape and (a - b).abs().max() <= rel * b.abs().max()


@pytest.fixture(autouse=True)
def pack_small_weights(monkeypatch):
    "These tests use small layers: pack them too (the default leaves weights under 256 x 256 to MKL)."
    monkeypatch.setattr(fast, "PACK_MIN_WEIGHTS", 0)


@pytest.fixture
def no_onednn(monkeypatch):
    monkeypatch.setattr(fast, "_ONEDNN", [False])


def test_small_weights_stay_with_mkl(monkeypatch):
    monkeypatch.setattr(fast, "PACK_MIN_WEIGHTS", 2 ** 16)
    small, big = torch.nn.Linear(128, 256).eval(), torch.nn.Linear(256, 256).eval()
    small, big = pack(small), pack(big)
    x = torch.randn(3, 128)
    with torch.no_grad():
        small(x); big(torch.randn(3, 256))
    assert getattr(small, "_packed", None) is None
    assert (getattr(big, "_packed", None) is not None) == onednn_packing()


def test_packed_linear_matches_linear_and_caches_its_weight():
    torch.manual_seed(0)
    for bias in (True, False):
        lin = torch.nn.Linear(96, 200, bias=bias)
        plin = pack(copy.deepcopy(lin).eval())
        assert type(plin) is PackedLinear and pack(plin) is None
        assert plin.state_dict().keys() == lin.state_dict().keys()
        for shape in ((7, 96), (2, 33, 96), (1, 1, 1, 96)):
            x = torch.randn(*shape)
            with torch.no_grad(): assert close(plin(x), lin(x))
    if onednn_packing():
        packed = plin._packed[2]
        with torch.no_grad(): plin(x)
        assert plin._packed[2] is packed                                # reused while the weight is unchanged


def test_packed_linear_repacks_when_the_weight_changes():
    torch.manual_seed(1)
    lin = torch.nn.Linear(64, 48); plin = pack(copy.deepcopy(lin).eval())
    x = torch.randn(10, 64)
    with torch.no_grad():
        plin(x)
        plin.weight.mul_(-3); lin.weight.mul_(-3)                       # in place: the version counter moves
        assert close(plin(x), lin(x))
        plin.load_state_dict(torch.nn.Linear(64, 48).state_dict())      # load_state_dict copies in place too
        assert close(plin(x), F.linear(x, plin.weight, plin.bias))
    with torch.inference_mode():
        w = torch.randn(48, 64)                                         # an inference tensor: not cached, still right
        plin.weight = torch.nn.Parameter(w, requires_grad=False)
        assert close(plin(x), F.linear(x, w, plin.bias))


def test_plain_path_in_training_autograd_and_float64():
    torch.manual_seed(2)
    lin = torch.nn.Linear(32, 16); plin = pack(copy.deepcopy(lin).eval())
    x = torch.randn(4, 32)
    y = plin(x)                                                         # autograd: the ordinary Linear, bit for bit
    assert y.requires_grad and torch.equal(y, lin(x)) and getattr(plin, "_packed", None) is None
    y.sum().backward()
    assert plin.weight.grad is not None
    with torch.no_grad():
        assert torch.equal(plin.double()(x.double()), lin.double()(x.double()))
        assert not packable(x.double(), plin.weight)
        plin.float()
        with torch.autocast("cpu", dtype=torch.bfloat16):                  # autocast decides the precision
            assert plin(x).dtype == torch.bfloat16 and not packable(x, plin.weight)
        plin.train()
        assert torch.equal(plin(x), lin.float()(x)) and getattr(plin, "_packed", None) is None   # training mode


def test_without_the_packing_ops_everything_is_plain(no_onednn):
    torch.manual_seed(3)
    assert not onednn_packing()
    lin = torch.nn.Linear(32, 16); plin = pack(copy.deepcopy(lin).eval())
    conv = torch.nn.Conv1d(16, 16, 3, padding=1); wconv = winograd_convs(16)("", copy.deepcopy(conv).eval())
    x, xc = torch.randn(4, 32), torch.randn(2, 16, 40)
    with torch.no_grad():
        assert torch.equal(plin(x), lin(x)) and getattr(plin, "_packed", None) is None
        assert close(wconv(xc), conv(xc)) and getattr(wconv, "_wino4_packed", None) is None


@needs_onednn
def test_winograd_products_with_packed_weights():
    torch.manual_seed(4)
    for C, O, L in ((128, 128, 64), (33, 70, 61), (256, 96, 9)):
        conv = torch.nn.Conv1d(C, O, 3, padding=1)
        x = torch.randn(2, C, L)
        with torch.no_grad():
            U = winograd_weight(conv.weight)
            assert close(winograd_conv1d(x, U, conv.bias, winograd_packed(U)), conv(x))
            wconv = winograd_convs(16)("", copy.deepcopy(conv).eval())
            assert close(wconv(x), conv(x)) and len(wconv._wino4_packed[2]) == 6
            assert getattr(wconv, "_wino4", None) is None                    # the unpacked U is not kept as well
            wconv.weight.mul_(0.5); conv.weight.mul_(0.5)
            assert close(wconv(x), conv(x))                             # packed products rebuilt


def test_optimized_model_uses_packed_linears_with_unchanged_eps():
    from mug_nb.model import Config, build_model
    torch.manual_seed(5)
    m = build_model(Config.tiny()).eval()
    for p in m.parameters():
        if p.ndim > 1 and p.abs().sum() == 0: torch.nn.init.normal_(p, std=0.05)
    plain = copy.deepcopy(m.model.unet_model)
    u = optimize_for_inference(m).model.unet_model
    assert any(type(x) is PackedLinear for x in u.modules()) and not any(type(x) is PackedLinear for x in plain.modules())
    L = 64
    x, t = torch.randn(2, 16, L), torch.tensor([3, 800])
    c = torch.randn(2, next(m for m in u.modules() if isinstance(m, CrossAttention) and m.context_dim != m.query_dim).context_dim, 21)
    w = [torch.randn(2, ch, L // 2 ** i) for i, ch in enumerate(u.audio_channels)]
    with torch.no_grad(): assert close(u(x, t, c, *w), plain(x, t, c, *w))
    if onednn_packing(): assert any(hasattr(m, "_packed") for m in u.modules())


def test_packed_pointwise_conv_matches_conv1d():
    torch.manual_seed(6)
    conv = torch.nn.Conv1d(96, 40, 1)
    pw = pack(pointwise_as_matmul("", copy.deepcopy(conv).eval()))
    assert type(pw) is PackedPointwiseConv1d
    x = torch.randn(2, 96, 37)
    with torch.no_grad():
        y = pw(x)
        assert close(y, conv(x)) and close(y + 1, conv(x) + 1)              # a (transposed) view: usable as it is
        assert close(pw(x.transpose(1, 2).contiguous().transpose(1, 2)), conv(x))   # a transposed input too
    if onednn_packing(): assert hasattr(pw, "_packed")
    assert torch.equal(pw(x), PointwiseConv1d.forward(pw, x))               # autograd: the plain matrix product


def test_unet_audio_constants_use_packed_skips():
    from mug_nb.model import Config, build_model
    torch.manual_seed(7)
    m = build_model(Config.tiny()).eval()
    for p in m.parameters():
        if p.ndim > 1 and p.abs().sum() == 0: torch.nn.init.normal_(p, std=0.05)
    plain = copy.deepcopy(m.model.unet_model)
    u = optimize_for_inference(m).model.unet_model
    L = 64
    x, t = torch.randn(1, 16, L), torch.tensor([400])
    cross = next(m for m in u.modules() if isinstance(m, CrossAttention) and m.context_dim != m.query_dim)
    c = torch.randn(1, cross.context_dim, 21)
    w = [torch.randn(1, ch, L // 2 ** i) for i, ch in enumerate(u.audio_channels)]
    with torch.no_grad():
        out = u(x, t, c, *w)
        if onednn_packing(): assert any("skip_packed" in k for k in u._audio_memo[1])
        ref = plain(x, t, c, *w)
    assert close(out, ref)
