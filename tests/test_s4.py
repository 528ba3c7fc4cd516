"""S4: the exact kernel agrees with its recurrence, compat reproduces the original's quirks, caching."""
import pytest
import torch

from mug_nb.s4 import (S4, S4Layer, SSKernelNPLR, S4Error, s4_recurrent, set_s4_mode, nplr_legs, hippo_legs, nplr_kernel,
                       matrix_power)

torch.set_num_threads(1)


def test_exact_kernel_equals_recurrence():
    torch.manual_seed(0)
    k = SSKernelNPLR(16, mode="exact").eval()
    conv = k(128)
    rec = k.recurrent_kernel(128)
    assert (conv - rec).abs().max() < 1e-5


def test_exact_s4_block_recurrent_equals_convolution():
    torch.manual_seed(1)
    s4 = S4(24, mode="exact").eval()
    u = torch.randn(2, 24, 70)
    with torch.no_grad():
        y = s4(u)[0]
    assert (y - s4_recurrent(s4, u)).abs().max() < 1e-5


def test_compat_kernel_is_not_the_true_kernel():
    torch.manual_seed(2)
    ex = SSKernelNPLR(8, mode="exact").eval()
    co = SSKernelNPLR(8, mode="compat").eval()
    co.load_state_dict(ex.state_dict())
    rec = ex.recurrent_kernel(64)
    assert (co(64) - rec).abs().max() > 1e-2          # conjugate modes dropped
    assert (ex(64) - rec).abs().max() < 1e-5


def test_compat_rewrites_C_and_doubles_L():
    torch.manual_seed(3)
    k = SSKernelNPLR(4, mode="compat").eval()
    C0 = k.C.detach().clone()
    k(32)
    assert int(k.L) == 32 and not torch.equal(k.C, C0)
    C1 = k.C.detach().clone()
    k(16)                                             # shorter: no change
    assert int(k.L) == 32 and torch.equal(k.C, C1)
    k(100)                                            # longer: 32 -> 64 -> 128
    assert int(k.L) == 128 and not torch.equal(k.C, C1)


def test_compat_output_depends_on_state():
    torch.manual_seed(4)
    s4 = S4(8, mode="compat").eval()
    u = torch.randn(1, 8, 32)
    with torch.no_grad():
        a = s4(u)[0]
        s4(torch.randn(1, 8, 64))
        b = s4(u)[0]
    assert (a - b).abs().max() > 1e-4


def test_exact_doubling_preserves_output():
    torch.manual_seed(5)
    s4 = S4(8, mode="exact").eval()
    u = torch.randn(1, 8, 32)
    with torch.no_grad():
        a = s4(u)[0]
        s4(torch.randn(1, 8, 256))
        b = s4(u)[0]
    assert (a - b).abs().max() < 1e-4


def test_kernel_cache_in_eval_and_invalidation():
    torch.manual_seed(6)
    k = SSKernelNPLR(4, mode="exact").eval()
    with torch.no_grad():
        a = k(32)
        assert k(32) is a
        k.log_dt.add_(0.1)                            # in-place update bumps the version
        b = k(32)
        assert b is not a and not torch.allclose(a, b)
        k.train()
        assert k(32) is not k(32)                     # no caching while training
    k.eval()
    assert k(32) is not k(32)                         # nor when gradients are recorded


def test_causal_and_gradients():
    torch.manual_seed(7)
    s4 = S4(8, mode="exact")
    u = torch.randn(1, 8, 40, requires_grad=True)
    y = s4(u)[0]
    y[..., 10].sum().backward()
    assert u.grad[..., 11:].abs().max() < 1e-6 and u.grad[..., :11].abs().max() > 1e-3
    assert s4.kernel.kernel.log_dt.grad is not None


def test_names_and_shapes_match_original():
    sd = S4Layer(128).state_dict()
    assert {k: tuple(v.shape) for k, v in sd.items()} == {
        "norm.weight": (128,), "norm.bias": (128,), "s4_model.D": (1, 128),
        "s4_model.kernel.kernel.C": (1, 128, 32, 2), "s4_model.kernel.kernel.log_dt": (128,),
        "s4_model.kernel.kernel.B": (1, 128, 32, 2), "s4_model.kernel.kernel.P": (1, 128, 32, 2),
        "s4_model.kernel.kernel.inv_w_real": (128, 32), "s4_model.kernel.kernel.w_imag": (128, 32),
        "s4_model.kernel.kernel.L": (), "s4_model.output_linear.0.weight": (256, 128, 1),
        "s4_model.output_linear.0.bias": (256,), "out_layer.weight": (128, 128, 3), "out_layer.bias": (128,)}
    assert sum(p.numel() for p in S4Layer(128).parameters()) == 5 * 128 ** 2 + 263 * 128


def test_hippo_nplr():
    w, P, B = nplr_legs(64)
    assert w.shape == (32,) and P.shape == (1, 32) and B.shape == (32,)
    assert torch.allclose(w.real, torch.full((32,), -0.5))
    A, b = hippo_legs(4)
    assert A[0, 0] == -1 and A[3, 3] == -4 and A[0, 1] == 0


def test_errors():
    with pytest.raises(S4Error):
        SSKernelNPLR(4, mode="fast")
    with pytest.raises(S4Error):
        S4(8)(torch.randn(1, 7, 10))
    m = S4Layer(32)
    assert set_s4_mode(m, "exact") == 1 and m.s4_model.kernel.kernel.mode == "exact"


def test_kernel_math_stays_on_the_input_device():
    "The frequency grid and identity matrices are made where the parameters live (a GPU in training; meta here)."
    H, N, d = 2, 4, "meta"
    C, B, P, w = (torch.randn(*s, dtype=torch.cfloat, device=d) for s in ((1, H, N), (H, N), (H, N), (H, N)))
    assert nplr_kernel(C, B, P, w, torch.rand(H, device=d), 16, 16, True).device.type == d
    assert matrix_power(torch.randn(2, 3, 3, device=d), 5).device.type == d
