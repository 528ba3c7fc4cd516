"""Winograd F(m, 3) convolutions: same numbers as Conv1d at inference, ordinary Conv1d in training."""
import copy

import pytest
import torch
import torch.nn.functional as F

from mug_nb.fast import (winograd_matrices, winograd_weight, winograd_conv1d, WinogradConv1d, winograd_convs,
                         replace_modules, optimize_for_inference, FastError)

torch.set_num_threads(1)


@pytest.mark.parametrize("m", [2, 4, 6])
def test_matrices_compute_a_3_tap_correlation(m):
    AT, G, BT = winograd_matrices(m)
    assert AT.shape == (m, m + 2) and G.shape == (m + 2, 3) and BT.shape == (m + 2, m + 2)
    g = torch.randn(3, dtype=torch.float64)
    for d in torch.randn(5, m + 2, dtype=torch.float64):
        assert torch.allclose(AT @ ((G @ g) * (BT @ d)), F.conv1d(d[None, None], g[None, None])[0, 0], atol=1e-12)
    if m <= 4:
        assert torch.equal(BT, BT.round())           # small integers: the input transform is exact in float32
    with pytest.raises(FastError):
        winograd_matrices(2, (0, 1, 1))


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("B,C,O,L", [(1, 128, 128, 64), (2, 33, 70, 61), (3, 5, 7, 1), (1, 16, 24, 2),
                                     (2, 64, 32, 127), (1, 256, 128, 130)])
def test_function_matches_conv1d(m, B, C, O, L):
    torch.manual_seed(B * 1000 + L)
    conv = torch.nn.Conv1d(C, O, 3, padding=1)
    x = torch.randn(B, C, L)
    with torch.no_grad():
        ref = conv(x)
        U = winograd_weight(conv.weight, m)
        assert U.shape == (m + 2, C, O)
        for bias in (conv.bias, None):
            y = winograd_conv1d(x, U, bias)
            r = ref if bias is not None else ref - conv.bias[:, None]
            assert y.shape == r.shape and y.is_contiguous()
            assert (y - r).abs().max() <= 1e-5 * r.abs().max()


def test_module_inference_only_and_weight_cache():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv1d(128, 192, 3, padding=1), torch.nn.SiLU(),
                              torch.nn.Conv1d(192, 192, 3, padding=1, bias=False),
                              torch.nn.Conv1d(192, 64, 3, padding=1),            # under min_channels
                              torch.nn.Conv1d(64, 192, 3, padding=2, dilation=2),  # not eligible
                              torch.nn.Conv1d(192, 192, 3, stride=2, padding=1))   # not eligible
    plain = copy.deepcopy(net)
    assert replace_modules(net, winograd_convs()) == 2 and replace_modules(net, winograd_convs()) == 0
    assert [type(m) is WinogradConv1d for m in net] == [True, False, True, False, False, False]
    assert net.state_dict().keys() == plain.state_dict().keys()
    x = torch.randn(2, 128, 100)
    # training / autograd: the ordinary convolution, bit for bit, and gradients flow
    y = net(x)
    assert torch.equal(y, plain(x)) and y.requires_grad
    y.square().mean().backward()
    assert net[0].weight.grad is not None and getattr(net[0], "_wino4", None) is None
    net.eval(); plain.eval()
    with torch.no_grad():
        a, ref = net(x), plain(x)
        assert (a - ref).abs().max() < 1e-5 * ref.abs().max()
        U = net[0]._wino4[2]
        assert net(x).equal(a) and net[0]._wino4[2] is U                 # transformed weights reused
        net[0].weight.mul_(2); plain[0].weight.mul_(2)                   # ... until the weights change
        b, ref = net(x), plain(x)
        assert net[0]._wino4[2] is not U and (b - ref).abs().max() < 1e-5 * ref.abs().max()
    with torch.inference_mode():
        assert (net(x) - plain(x)).abs().max() < 1e-5 * ref.abs().max()
    net.train()
    with torch.no_grad():
        assert torch.equal(net(x), plain(x))                            # training mode: the plain convolution


def test_unet_with_winograd_gives_the_same_eps():
    from mug_nb.unet import UNetModel
    from mug_nb.fast import FastUNet
    torch.manual_seed(1)
    cfg = dict(model_channels=32, channel_mult=(1, 2, 2, 2), num_res_blocks=1, num_heads=4, context_dim=32,
               audio_channels=(32, 32, 32, 32), attention_resolutions=(8, 4), s4_mode="exact")
    u = UNetModel(**cfg)
    for p in u.parameters():
        if p.ndim > 1 and p.abs().sum() == 0: torch.nn.init.normal_(p, std=0.05)
    u.eval()
    x, t, c = torch.randn(2, 16, 64), torch.tensor([5, 700]), torch.randn(2, 32, 21)
    w = [torch.randn(2, ch, 64 // 2 ** i) for i, ch in enumerate(cfg["audio_channels"])]
    f = FastUNet.from_unet(copy.deepcopy(u))
    assert replace_modules(f, winograd_convs(16)) > 0
    with torch.no_grad():
        ref = u(x, t, c, *w)
        fast = f(x, t, c, *w)                                            # audio-once path included
        assert any("w_wino" in k for k in f._audio_memo[1])
        c2, w2 = torch.cat([c * 0, c]), [torch.cat([a, a]) for a in w]
        halves = f(x, t, c2, *w2, halves=True)
        doubled = u(torch.cat([x, x]), torch.cat([t, t]), c2, *w2)
    assert (fast - ref).abs().max() < 1e-5 * ref.abs().max() and (halves - doubled).abs().max() < 1e-5


def test_compat_golden_eps_with_winograd(compat, compat_model):
    "The golden fixture's U-Net output and guided DDIM run with every 3-tap convolution of the U-Net as Winograd."
    from mug_nb.diffusion import ddim_sample
    m, g, meta = compat_model(), compat.golden, compat.meta
    assert replace_modules(m.model.unet_model, winograd_convs(16)) > 10    # the fixture is narrow: convert them all
    with torch.inference_mode():
        eps = m(g["unet_x"], g["unet_t"], g["unet_context"], g["wave_out"])
        assert (eps - g["unet_eps"]).abs().max() < 1e-4
        x = ddim_sample(m, tuple(g["ddim_x_T"].shape), g["ddim_c"], g["wave_out"], meta["ddim_S"],
                        cfg_scale=meta["cfg_scale"], uc=g["ddim_uc"], eta=meta["ddim_eta"], x_T=g["ddim_x_T"])
        assert (x - g["ddim_samples"]).abs().max() / g["ddim_samples"].abs().max() < 1e-4
