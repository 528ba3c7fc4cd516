"""Tests of mug_nb.vae: building blocks, sizes and names, posterior, loss, the original's numbers, explorer."""
import math

import numpy as np
import pytest
import torch
import yaml

from conftest import original_keys
from mug_nb.vae import (FULL_DDCONFIG, TINY_DDCONFIG, AutoencoderKL, Decoder, DiagonalGaussianDistribution,
                        Downsample, Encoder, ManiaReconstructLoss, Normalize, ResnetBlock, Upsample, VAEError,
                        chart_latent, end_mask, explore_latent, latent_explorer, mix_latents, perturb_latent, vae_loss)



def n_params(m):
    return sum(p.numel() for p in m.parameters())


def note_batch(B=2, T=64, seed=7):
    """A note-like batch and random logits (the same draws as the fixture's `loss_in`, `loss_rec`)."""
    g = torch.Generator().manual_seed(seed)
    start = (torch.rand(B, 4, T, generator=g) < 0.15).float()
    hold = (torch.rand(B, 4, T, generator=g) < 0.3).float()
    x = torch.cat([start, torch.rand(B, 4, T, generator=g) * start, hold, torch.rand(B, 4, T, generator=g)], 1)
    return x, torch.randn(B, 16, T, generator=g) * 2


def test_blocks():
    assert Normalize(64, 8).eps == 1e-6
    with pytest.raises(VAEError):
        Normalize(10, 8)
    x = torch.randn(1, 4, 10)
    d = Downsample(4)
    y = d(x)
    assert y.shape == (1, 4, 5)
    # right padding: output frame i sees input frames 2i, 2i+1, 2i+2 (zero past the end)
    ref = torch.nn.functional.conv1d(torch.cat([x, torch.zeros(1, 4, 1)], -1), d.conv.weight, d.conv.bias, stride=2)
    assert torch.allclose(y, ref)
    assert "conv.weight" in Downsample(4, with_conv=False).state_dict()  # kept, as in the original
    assert Upsample(4)(x).shape == (1, 4, 20) and "conv.weight" not in Upsample(4, False).state_dict()
    blk = ResnetBlock(in_channels=8, out_channels=16, dropout=0.0, temb_channels=0, num_groups=4, dilations=(4, 8))
    assert blk.conv1.dilation == (4,) and blk.conv2.padding == (8,) and blk(torch.randn(2, 8, 33)).shape == (2, 16, 33)
    assert ResnetBlock(in_channels=8, dropout=0.0, num_groups=4)(x.repeat(1, 2, 1)).shape == (1, 8, 10)


def test_resnet_checkpointing_same_numbers():
    blk = ResnetBlock(in_channels=8, out_channels=8, dropout=0.0, temb_channels=0, num_groups=4, use_checkpoint=True)
    x = torch.randn(2, 8, 30, requires_grad=True)
    blk.train()
    y = blk(x)
    y.sum().backward()
    g = x.grad.clone()
    blk.use_checkpoint = False
    x.grad = None
    y2 = blk(x)
    y2.sum().backward()
    assert torch.allclose(y, y2) and torch.allclose(g, x.grad, atol=1e-6)


def test_full_sizes():
    assert n_params(Encoder(**FULL_DDCONFIG)) == 1_907_872
    assert n_params(Decoder(**FULL_DDCONFIG)) == 3_178_320
    assert n_params(AutoencoderKL(FULL_DDCONFIG)) == 5_086_192
    assert n_params(AutoencoderKL(TINY_DDCONFIG)) == 330_016


def test_names_equal_original():
    p = "model.first_stage_model."
    ref = [(k[len(p):], s) for k, s in original_keys() if k.startswith(p)]
    ours = [(k, str(list(v.shape))) for k, v in AutoencoderKL(FULL_DDCONFIG).state_dict().items()]
    assert ours == ref


def test_shapes_and_errors():
    vae = AutoencoderKL(TINY_DDCONFIG).eval()
    with torch.no_grad():
        post = vae.encode(torch.zeros(2, 16, 128))
        assert post.mean.shape == post.logvar.shape == (2, 16, 16) and post.parameters.shape == (2, 32, 16)
        rec, _ = vae(torch.zeros(2, 16, 128), sample_posterior=False)
        assert rec.shape == (2, 16, 128)
    for bad in (torch.zeros(2, 16, 100), torch.zeros(2, 12, 128), torch.zeros(16, 128)):
        with pytest.raises(VAEError):
            vae.encode(bad)


def test_posterior():
    mean, logvar = torch.randn(2, 4, 8), torch.randn(2, 4, 8) * 20
    p = DiagonalGaussianDistribution(torch.cat([mean, logvar], 1), scale=2.0)
    assert p.logvar.min() >= -10 and p.logvar.max() <= 20 and torch.equal(p.logvar, logvar.clamp(-10, 20))
    assert torch.equal(p.mode(), mean * 2.0)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    eps = torch.randn(mean.shape, generator=g2)
    assert torch.allclose(p.sample(g1), (mean + torch.exp(0.5 * p.logvar) * eps) * 2.0)
    expected = 0.5 * torch.mean(mean ** 2 + torch.exp(p.logvar) - 1 - p.logvar)  # a mean, not a sum
    assert torch.allclose(p.kl(), expected)
    q = DiagonalGaussianDistribution(torch.zeros(2, 8, 8))
    assert float(q.kl()) == 0.0 and float(q.kl(q)) == 0.0
    assert float(DiagonalGaussianDistribution(torch.randn(1, 8, 4), deterministic=True).kl()) == 0.0
    vae = AutoencoderKL(TINY_DDCONFIG, scale=2.0)
    z = torch.randn(1, 16, 4)
    with torch.no_grad():
        assert torch.allclose(vae.decode(z), vae.decoder(z / 2.0))


def test_end_mask():
    hold = torch.tensor([[[0., 1, 1, 0, 1, 0, 1, 1]]])
    assert end_mask(hold).tolist() == [[[0, 0, 1, 0, 1, 0, 0, 1]]]


def test_loss_equals_original(compat):
    """The loss and metrics the original mug/firststage/losses.py computed on the fixture's batch (tests/compat, (i))."""
    g, expected = compat.golden, compat.meta["loss_logs"]
    loss, logs = ManiaReconstructLoss(*compat.meta["loss_args"])(g["loss_in"], g["loss_rec"], g["loss_valid"])
    assert math.isclose(loss.item(), g["loss"].item(), rel_tol=1e-6)
    assert set(logs) == set(expected) and len(expected) == 10
    for k, v in expected.items():
        assert math.isclose(logs[k], v, rel_tol=1e-5), (k, logs[k], v)


def test_loss_terms_by_hand():
    x, r = note_batch(seed=3)
    crit = ManiaReconstructLoss(weight_start_offset=0.5, weight_holding=0.5, weight_end_offset=0.2, label_smoothing=0.1)
    loss, logs = crit(x, r)
    t = x[:, :4] * 0.8 + 0.1
    bce = -(t * torch.nn.functional.logsigmoid(r[:, :4]) + (1 - t) * torch.nn.functional.logsigmoid(-r[:, :4]))
    assert math.isclose(logs["start_loss"], float(bce.mean() / (1 + 1e-6)), rel_tol=1e-5)
    heads = x[:, :4]
    off = ((r[:, 4:8] - x[:, 4:8]) ** 2 * heads).mean() / (heads + 1e-6).mean()
    assert math.isclose(logs["offset_start_loss"], float(off), rel_tol=1e-5)
    total = (logs["start_loss"] + 0.5 * logs["holding_loss"] + 0.5 * logs["offset_start_loss"]
             + 0.2 * logs["offset_end_loss"])
    assert math.isclose(loss.item(), total, rel_tol=1e-5)


def test_loss_padding_mask_option():
    x, r = note_batch()
    valid = torch.ones(2, 64)
    valid[:, 32:] = 0
    same, _ = ManiaReconstructLoss()(x, r, valid)  # the original ignores valid_flag
    full, _ = ManiaReconstructLoss()(x, r, torch.ones(2, 64))
    masked, logs_m = ManiaReconstructLoss(mask_padding=True)(x, r, valid)
    _, logs_h = ManiaReconstructLoss()(x[..., :32], r[..., :32])
    assert torch.equal(same, full) and not torch.isclose(masked, full)
    for k in ("start_loss", "holding_loss", "offset_start_loss", "acc_rice", "recall_ln"):
        assert math.isclose(logs_m[k], logs_h[k], rel_tol=1e-4), k
    with pytest.raises(VAEError):
        ManiaReconstructLoss()(x, r[:, :8])


def test_tiny_training_step_learns():
    """Functional part only: steps run and reduce the loss. Speed (< 1 s a step) is measured by
    benchmarks/bench_train_step.py, not asserted here."""
    torch.manual_seed(0)
    vae, crit = AutoencoderKL(TINY_DDCONFIG), ManiaReconstructLoss()
    opt = torch.optim.Adam(vae.parameters(), lr=3e-3)
    x, _ = note_batch(B=4, T=1024)
    losses = []
    for _ in range(4):
        loss, logs = vae_loss(vae, crit, x, sample_posterior=False)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0], losses
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in vae.parameters())
    assert {"train/kl_loss", "train/kl_var", "train/z_std", "train/z_mean", "train/recall_ln"} <= set(logs)


@pytest.fixture(scope="module")
def golden(compat):
    "The VAE of the committed compat fixture (tests/compat), its ddconfig read from the original's YAML there."
    sd, outputs = compat.sd, compat.golden
    p = "model.first_stage_model."
    ddconfig = yaml.safe_load(compat.config.read_text())["model"]["params"]["first_stage_config"]["params"]["ddconfig"]
    vae = AutoencoderKL(ddconfig).eval()
    vae.load_state_dict({k[len(p):]: v for k, v in sd.items() if k.startswith(p)}, strict=True)
    return vae, outputs


def test_compat_encode(golden):
    vae, g = golden
    with torch.inference_mode():
        post = vae.encode(g["vae_note_in"])
        pairs = [(post.parameters, "vae_posterior_parameters"), (post.mean, "vae_mean"),
                 (post.logvar, "vae_logvar"), (post.mode(), "vae_mode")]
        for ours, name in pairs:
            assert ours.shape == g[name].shape and torch.allclose(ours, g[name], atol=1e-4, rtol=0), name


def test_compat_decode(golden):
    vae, g = golden
    with torch.inference_mode():
        assert torch.allclose(vae.decode(g["vae_z"]), g["vae_decoded"], atol=1e-4, rtol=0)
        assert torch.allclose(vae.decode(g["ddim_samples"]), g["ddim_decoded"], atol=1e-4, rtol=0)


def test_latent_explorer_functions():
    vae = AutoencoderKL(TINY_DDCONFIG).eval()
    x, _ = note_batch(B=2, T=100)
    arrays = {"a": x[0].numpy(), "b": x[1].numpy()}
    za = chart_latent(vae, arrays["a"])
    assert za.shape == (16, 13)  # 100 frames padded to 104
    g = torch.Generator().manual_seed(0)                  # not the global RNG: the result must not depend on test order
    z0, z1 = torch.randn(16, 13, generator=g), torch.randn(16, 13, generator=g)
    mid = mix_latents(z0, z1, 0.5)
    assert torch.allclose(mid, (z0 + z1) / 2, atol=1e-6)  # lerp rounds differently from (a+b)/2 near zero
    s = mix_latents(z0, z1, 0.5, spherical=True)
    assert abs(s.norm() / mid.norm() - 1) > 1e-3 and torch.allclose(mix_latents(z0, z1, 0.0, True), z0, atol=1e-5)
    with pytest.raises(VAEError):
        mix_latents(z0, z1[:, :5], 0.5)
    assert torch.equal(perturb_latent(z0, 0.0), z0) and not torch.equal(perturb_latent(z0, 1.0, 1), perturb_latent(z0, 1.0, 2))
    r0 = explore_latent(vae, arrays, "a")
    r1 = explore_latent(vae, arrays, "a", "b", alpha=1.0)
    assert torch.allclose(r1["z"], chart_latent(vae, arrays["b"]))
    assert r0["decoded"].shape == (16, 104) and isinstance(r0["notes"], list)
    r2 = explore_latent(vae, arrays, "a", sigma=2.0, seed=5)
    assert not np.allclose(r2["decoded"], r0["decoded"])
    with pytest.raises(VAEError):
        explore_latent(vae, arrays, "nope")


def test_latent_explorer_widget():
    pytest.importorskip("ipywidgets")
    import matplotlib
    matplotlib.use("Agg")
    vae = AutoencoderKL(TINY_DDCONFIG).eval()
    x, _ = note_batch(B=2, T=96)
    box = latent_explorer(vae, {"a": x[0].numpy(), "b": x[1].numpy()})
    box.controls["alpha"].value = 0.5  # the observer runs update()
    first = box.state["result"]["z"].clone()
    box.controls["sigma"].value = 1.0
    assert not torch.equal(first, box.state["result"]["z"])
    assert box.update() is box.state["fig"]


def test_sample_uses_global_cpu_rng_like_the_original():
    p = DiagonalGaussianDistribution(torch.randn(1, 8, 6))
    torch.manual_seed(5)
    a = p.sample()
    torch.manual_seed(5)
    eps = torch.randn(1, 4, 6)
    assert torch.allclose(a, p.mean + p.std * eps)


def test_bundled_vae_round_trip():
    """The bundled tiny VAE (mug_nb/assets, when installed) gives back the notes of charts it never saw."""
    from pathlib import Path

    import mug_nb
    from mug_nb.chart import chart_to_array
    from mug_nb.model import load_checkpoint
    from mug_nb.synth import chart_for_song, synth_song
    assets = Path(mug_nb.__file__).parent / "assets"
    if not (assets / "model.safetensors").is_file():
        pytest.skip("no bundled model in mug_nb/assets")
    vae = load_checkpoint(assets).model.first_stage_model.eval()
    song = synth_song(3, duration=40)  # training used seeds >= 1000
    for diff in ("Normal", "Hard"):
        array = chart_to_array(chart_for_song(song, diff, seed=3), n_frames=864)[0]
        r = explore_latent(vae, {"x": array}, "x")
        truth, got = r["input_notes"], r["notes"]

        def matched(a, b):
            return np.mean([any(m.column == n.column and abs(m.time - n.time) <= 50 for m in b) for n in a])
        assert len(truth) > 20 and matched(truth, got) > 0.8 and matched(got, truth) > 0.8, (diff, len(truth), len(got))
