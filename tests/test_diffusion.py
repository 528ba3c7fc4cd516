"""Schedules, q_sample, losses and samplers, checked against closed forms and the original's numbers."""
import numpy as np
import pytest
import torch
from torch import nn

from mug_nb.diffusion import (make_beta_schedule, schedule_buffers, Schedule, q_sample, snr, diffusion_loss,
                              elementwise_loss, v_target, eps_from_v, ddim_timesteps, ddim_parameters, ddim_sample,
                              ddpm_sample, schedule_point, noised_view, DiffusionError, SCHEDULE_BUFFERS, _extract)

torch.set_num_threads(1)
S = Schedule()


class Gauss(nn.Module):
    "Optimal eps for x0 ~ N(0, s^2); s from the condition when given."
    def __init__(self, s=0.5): super().__init__(); self.s = s
    def forward(self, x, t, c=None, w=None):
        a = _extract(S.alphas_cumprod, t, x)
        s2 = self.s ** 2 if c is None else c[:, :, None] ** 2
        return (1 - a).sqrt() * x / (a * s2 + 1 - a)


def test_linear_schedule_matches_ldm():
    b = make_beta_schedule("linear", 1000)
    assert b.dtype == np.float64 and np.isclose(b[0], 1e-4) and np.isclose(b[-1], 0.02)
    assert np.allclose(np.sqrt(b), np.linspace(0.01, np.sqrt(0.02), 1000))
    buf = schedule_buffers(b)
    assert list(buf) == list(SCHEDULE_BUFFERS) and all(v.dtype == torch.float32 for v in buf.values())
    assert torch.allclose(buf["alphas_cumprod"], torch.tensor(np.cumprod(1 - b), dtype=torch.float32))
    with pytest.raises(DiffusionError):
        make_beta_schedule("quadratic")


def test_golden_buffers(compat):
    g = compat.golden
    buf = schedule_buffers(make_beta_schedule("linear", 1000))
    for k in ("betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod"):
        assert torch.equal(buf[k], g["ddpm_" + k]), k
    p = ddim_parameters(buf["alphas_cumprod"], ddim_timesteps(compat.meta["ddim_S"]), compat.meta["ddim_eta"])
    assert torch.equal(torch.as_tensor(p["timesteps"]), g["ddim_timesteps"])
    assert torch.equal(p["alphas"], g["ddim_alphas"])
    assert np.array_equal(p["alphas_prev"], g["ddim_alphas_prev"].numpy())
    assert torch.allclose(p["sqrt_one_minus_alphas"], g["ddim_sqrt_one_minus_alphas"])


def test_q_sample_statistics():
    x0 = torch.full((4000, 1, 1), 2.0)
    t = torch.full((4000,), 500)
    xt = q_sample(S, x0, t)
    a = S.alphas_cumprod[500]
    assert abs(xt.mean() - 2 * a.sqrt()) < 0.05 and abs(xt.std() - (1 - a).sqrt()) < 0.05
    assert torch.allclose(q_sample(S, x0[:2], torch.tensor([0, 0]), torch.zeros(2, 1, 1)), x0[:2], atol=1e-3)


def test_v_parameterisation_roundtrip():
    x0, eps, t = torch.randn(3, 4, 8), torch.randn(3, 4, 8), torch.tensor([1, 500, 999])
    xt = q_sample(S, x0, t, eps)
    assert torch.allclose(eps_from_v(S, xt, v_target(S, x0, eps, t), t), eps, atol=1e-4)


def test_smooth_l1_loss_definition():
    d = torch.tensor([0.0, 0.01, 0.5])
    l = elementwise_loss(d, torch.zeros(3))
    assert torch.allclose(l, torch.tensor([0.01, 0.5 * 0.01 ** 2 / 0.02 + 0.01, 0.5 - 0.01 + 0.01]))


def test_loss_prefers_the_optimal_denoiser_and_has_grads():
    torch.manual_seed(0)
    x0 = 0.5 * torch.randn(64, 4, 16)
    t, noise = torch.randint(0, 1000, (64,)), torch.randn(64, 4, 16)
    good, _ = diffusion_loss(Gauss(0.5), x0, None, None, t=t, noise=noise, sched=S, loss_type="l2")
    bad, _ = diffusion_loss(Gauss(3.0), x0, None, None, t=t, noise=noise, sched=S, loss_type="l2")
    assert good < bad
    lin = nn.Conv1d(4, 4, 1)
    loss, logs = diffusion_loss(lambda x, t, c, w: lin(x), x0, None, None, sched=S, parameterization="v")
    loss.backward()
    assert lin.weight.grad is not None and set(logs) >= {"loss", "mae", "mse"}
    mask = torch.zeros(64, 16); mask[:, :8] = 1
    l1, _ = diffusion_loss(lambda x, t, c, w: lin(x), x0, None, None, t=t, noise=noise, sched=S, mask=mask)
    assert torch.isfinite(l1)
    with pytest.raises(DiffusionError):
        diffusion_loss(Gauss(), x0, None, None, sched=S, parameterization="score")


def test_ddim_timesteps_quirks():
    assert list(ddim_timesteps(10)) == [1, 101, 201, 301, 401, 501, 601, 701, 801, 901]
    assert len(ddim_timesteps(30)) == 31 and len(ddim_timesteps(150)) == 167 and len(ddim_timesteps(70)) == 72
    assert ddim_timesteps(50)[-1] == 981
    # where the stride divides 999 the original's +1 would index t = 1000, past the schedule: clipped to 999
    assert list(ddim_timesteps(3)) == [1, 334, 667, 999] and list(ddim_timesteps(1000)) == list(range(1, 1000))
    for steps in range(1, 1001):
        ts = ddim_timesteps(steps)
        assert ts[0] == 1 and ts[-1] <= 999 and (np.diff(ts) > 0).all(), steps
    with pytest.raises(DiffusionError):
        ddim_timesteps(0)


def test_ddim_samples_the_gaussian_and_is_deterministic():
    g = torch.Generator().manual_seed(0)
    xT = torch.randn(16, 8, 32, generator=g)
    x, inter = ddim_sample(Gauss(0.5), xT.shape, None, None, 50, sched=S, x_T=xT, return_intermediates=True)
    assert abs(x.std().item() - 0.5) < 0.03
    assert len(inter["x_inter"]) == 51 and len(inter["pred_x0"]) == 51 and inter["x_inter"][0] is not None
    assert torch.equal(ddim_sample(Gauss(0.5), xT.shape, None, None, 50, sched=S, x_T=xT), x)
    # eta > 0 draws noise but still lands on the right distribution
    x2 = ddim_sample(Gauss(0.5), xT.shape, None, None, 50, sched=S, x_T=xT, eta=1.0, generator=g)
    assert abs(x2.std().item() - 0.5) < 0.05 and not torch.allclose(x2, x)


def test_guidance_formula():
    c, uc = torch.full((8, 1), 0.5), torch.full((8, 1), 1.0)
    xT = torch.randn(8, 4, 16, generator=torch.Generator().manual_seed(1))
    one = ddim_sample(Gauss(), xT.shape, c, None, 10, cfg_scale=1.0, uc=uc, sched=S, x_T=xT)
    cond = ddim_sample(Gauss(), xT.shape, c, None, 10, sched=S, x_T=xT)
    assert torch.allclose(one, cond)
    s3 = ddim_sample(Gauss(), xT.shape, c, None, 10, cfg_scale=3.0, uc=uc, sched=S, x_T=xT)
    assert s3.std() < cond.std()


def test_ddpm_sampler():
    x = ddpm_sample(Gauss(0.5), (8, 8, 32), None, None, sched=S, generator=torch.Generator().manual_seed(0))
    assert abs(x.std().item() - 0.5) < 0.05


class OnDevice(nn.Module):
    "A stand-in network that fails unless x and t live on `device`."
    def __init__(self, device): super().__init__(); self.device = device
    def forward(self, x, t, c=None, w=None):
        assert x.device.type == t.device.type == self.device, (x.device, t.device)
        return torch.zeros_like(x)


def test_ddpm_sampler_stays_on_the_schedule_device():
    "Noise comes from a CPU generator but is moved to where the model lives (a GPU in training; meta here)."
    sched = Schedule(timesteps=50).to("meta")           # every step is the same code: 50 show it (1000 took ~10 s)
    x = ddpm_sample(OnDevice("meta"), (2, 4, 8), None, None, sched=sched, generator=torch.Generator())
    assert x.device.type == "meta" and x.shape == (2, 4, 8)


def test_widget_logic():
    p = schedule_point("linear", 999)
    assert p["alpha_bar"] < 1e-3 and p["snr"] < 1e-3 and len(p["curve"]) == 1000
    assert schedule_point("cosine", 0)["alpha_bar"] > 0.99
    v = noised_view(torch.ones(4, 32), "linear", 0, decode=lambda z: z * 2)
    assert torch.allclose(v["x_t"], torch.ones(4, 32), atol=0.05) and v["decoded"].shape == (4, 32)
    assert torch.equal(noised_view(torch.ones(4, 32), "linear", 500, seed=3)["x_t"],
                       noised_view(torch.ones(4, 32), "linear", 500, seed=3)["x_t"])
    with pytest.raises(DiffusionError):
        schedule_point("linear", 1000)


def test_v_and_x0_models_sample_like_eps():
    class AsV(nn.Module):
        def forward(self, x, t, c=None, w=None):
            eps = Gauss(0.5)(x, t)
            x0 = (x - _extract(S.sqrt_one_minus_alphas_cumprod, t, x) * eps) / _extract(S.sqrt_alphas_cumprod, t, x)
            return v_target(S, x0, eps, t)
    xT = torch.randn(4, 4, 16, generator=torch.Generator().manual_seed(2))
    a = ddim_sample(Gauss(0.5), xT.shape, None, None, 20, sched=S, x_T=xT)
    b = ddim_sample(AsV(), xT.shape, None, None, 20, sched=S, x_T=xT, parameterization="v")
    assert (a - b).abs().max() < 1e-3
    with pytest.raises(DiffusionError):
        ddim_sample(Gauss(0.5), xT.shape, None, None, 2, sched=S, x_T=xT, parameterization="score")


class AsV(nn.Module):
    "Gauss(s)'s optimal eps, returned as a v prediction."
    def __init__(self, s=0.5): super().__init__(); self.eps = Gauss(s)
    def forward(self, x, t, c=None, w=None):
        eps = self.eps(x, t, c)
        x0 = (x - _extract(S.sqrt_one_minus_alphas_cumprod, t, x) * eps) / _extract(S.sqrt_alphas_cumprod, t, x)
        return v_target(S, x0, eps, t)


def test_inpainting_keeps_the_known_part_with_a_v_model():
    known = torch.full((8, 4, 32), 2.0)
    mask = torch.ones(1, 1, 32); mask[..., :16] = 0
    g = lambda: torch.Generator().manual_seed(3)
    v = ddim_sample(AsV(), known.shape, None, None, 20, sched=S, parameterization="v", mask=mask, x0_known=known, generator=g())
    e = ddim_sample(Gauss(0.5), known.shape, None, None, 20, sched=S, mask=mask, x0_known=known, generator=g())
    assert torch.equal(v[..., :16], known[..., :16]) and (v - e).abs().max() < 1e-3      # v and eps models agree
    assert abs(v[..., 16:].std().item() - 0.5) < 0.1
    free = ddim_sample(AsV(), known.shape, None, None, 20, sched=S, parameterization="v", generator=g())
    every = ddim_sample(AsV(), known.shape, None, None, 20, sched=S, parameterization="v", generator=g(),
                        mask=torch.ones(1, 1, 32), x0_known=known)
    assert torch.allclose(every, free)                        # mask 1 everywhere: plain sampling, same noise order
    with pytest.raises(DiffusionError, match="both"):
        ddim_sample(AsV(), known.shape, None, None, 2, sched=S, mask=mask)


def test_inpainting_works_for_x0_models():
    class AsX0(nn.Module):
        def forward(self, x, t, c=None, w=None):
            eps = Gauss(0.5)(x, t)
            return (x - _extract(S.sqrt_one_minus_alphas_cumprod, t, x) * eps) / _extract(S.sqrt_alphas_cumprod, t, x)
    known, mask = torch.full((4, 4, 32), -1.0), (torch.arange(32) >= 8).float()
    a = ddim_sample(Gauss(0.5), known.shape, None, None, 10, sched=S, mask=mask, x0_known=known,
                    generator=torch.Generator().manual_seed(0))
    b = ddim_sample(AsX0(), known.shape, None, None, 10, sched=S, mask=mask, x0_known=known, parameterization="x0",
                    generator=torch.Generator().manual_seed(0))
    assert torch.equal(b[..., :8], known[..., :8]) and (a - b).abs().max() < 1e-3


def test_inpainting_reproduces_the_repaint_loop_of_generate():
    "The loop `generate.inpaint_latents` had (guided, eps, noise: x_T then one draw per step) gives the same latent."
    import math
    c, uc = torch.full((1, 1), 0.5), torch.full((1, 1), 1.0)
    z0 = torch.randn(1, 4, 32, generator=torch.Generator().manual_seed(7))
    m = (torch.arange(32) >= 12).float()[None, None]
    net, steps, scale, seed = Gauss(), 10, 3.0, 5
    ab = torch.as_tensor(np.asarray(S.alphas_cumprod.detach().cpu(), np.float64))
    ts, g = ddim_timesteps(steps, len(ab)), torch.Generator().manual_seed(seed)
    x = torch.randn(z0.shape, generator=g)
    for i in range(len(ts) - 1, -1, -1):
        a_t, a_prev = float(ab[ts[i]]), float(ab[ts[i - 1]] if i > 0 else ab[0])
        t = torch.full((1,), int(ts[i]), dtype=torch.long)
        e_u, e_c = net(torch.cat([x, x]), torch.cat([t, t]), torch.cat([uc, c])).chunk(2)
        eps = e_u + scale * (e_c - e_u)
        x0 = (x - math.sqrt(1 - a_t) * eps) / math.sqrt(a_t)
        x = math.sqrt(a_prev) * x0 + math.sqrt(1 - a_prev) * eps
        known = math.sqrt(a_prev) * z0 + math.sqrt(1 - a_prev) * torch.randn(z0.shape, generator=g)
        x = m * x + (1 - m) * (known if i > 0 else z0)
    ours = ddim_sample(net, z0.shape, c, None, steps, cfg_scale=scale, uc=uc, sched=S, mask=m, x0_known=z0,
                       generator=torch.Generator().manual_seed(seed))
    assert (ours - x).abs().max() < 1e-5
