"""U-Net: module tree, zero init, audio routing, causality of S4 not required, parameter counts."""
import pytest
import torch

from mug_nb.unet import UNetModel, UNetError, timestep_embedding, TimestepResBlock, parameter_table, AudioConcatBlock

torch.set_num_threads(1)
SMALL = dict(model_channels=32, channel_mult=(1, 2, 2, 2), num_res_blocks=1, num_heads=4, context_dim=32,
             audio_channels=(32, 32, 32, 32), attention_resolutions=(8,), s4_mode="exact")


def audio(B, L, chans):
    return [torch.randn(B, c, L // 2 ** i) for i, c in enumerate(chans)]


def test_timestep_embedding_cos_first():
    e = timestep_embedding(torch.tensor([0, 5]), 128)
    assert torch.allclose(e[0, :64], torch.ones(64)) and torch.allclose(e[0, 64:], torch.zeros(64))
    assert torch.isclose(e[1, 0], torch.cos(torch.tensor(5.0))) and torch.isclose(e[1, 64], torch.sin(torch.tensor(5.0)))


def test_zero_init_and_shapes():
    torch.manual_seed(0)
    u = UNetModel(**SMALL)
    x = torch.randn(2, 16, 64)
    eps = u(x, torch.tensor([1, 999]), torch.randn(2, 32, 21), *audio(2, 64, SMALL["audio_channels"]))
    assert eps.shape == x.shape and eps.abs().max() == 0


def test_output_depends_on_inputs_once_trained_weights_nonzero():
    torch.manual_seed(1)
    u = UNetModel(**SMALL).eval()
    for n, p in u.named_parameters():
        if p.abs().sum() == 0 and p.ndim > 1:
            torch.nn.init.normal_(p, std=0.02)
    x, c, w = torch.randn(1, 16, 64), torch.randn(1, 32, 21), audio(1, 64, SMALL["audio_channels"])
    with torch.no_grad():
        base = u(x, torch.tensor([10]), c, *w)
        assert (u(x, torch.tensor([900]), c, *w) - base).abs().max() > 1e-5           # time
        assert (u(x, torch.tensor([10]), c + 1, *w) - base).abs().max() > 1e-5        # prompt
        w2 = [wi.clone() for wi in w]; w2[-1] += 1
        assert (u(x, torch.tensor([10]), c, *w2) - base).abs().max() > 1e-5           # audio


def test_extra_leading_audio_maps_are_ignored():
    torch.manual_seed(2)
    u = UNetModel(**SMALL).eval()
    x, c, w = torch.randn(1, 16, 64), torch.randn(1, 32, 21), audio(1, 64, SMALL["audio_channels"])
    with torch.no_grad():
        a = u(x, torch.tensor([3]), c, *w)
        b = u(x, torch.tensor([3]), c, torch.randn(1, 8, 512), *w)
    assert torch.equal(a, b)


def test_errors():
    u = UNetModel(**SMALL)
    with pytest.raises(UNetError):
        u(torch.randn(1, 16, 60), torch.tensor([1]), torch.randn(1, 32, 21), *audio(1, 64, SMALL["audio_channels"]))
    with pytest.raises(UNetError):
        u(torch.randn(1, 16, 64), torch.tensor([1]), torch.randn(1, 32, 21), *audio(1, 64, (32, 32)))
    with pytest.raises(UNetError):
        UNetModel(channel_mult=(1, 2), audio_channels=(256, 512, 512))


def test_golden_widths_tree_names():
    u = UNetModel(model_channels=32, channel_mult=[1, 1, 2, 2], num_res_blocks=1, num_heads=4, context_dim=32,
                  audio_channels=[32, 64, 64, 64])
    names = [n for n, _ in u.named_modules() if n.endswith("s4_model.kernel.kernel")]
    assert names == [f"input_blocks.{i}.{j}.s4_model.kernel.kernel" for i, j in ((2, 1), (5, 2), (8, 2), (11, 2))] + \
                    [f"output_blocks.{i}.{j}.s4_model.kernel.kernel" for i, j in ((1, 2), (4, 2), (7, 2), (10, 1))]
    assert sum(p.numel() for p in u.parameters()) == 1_496_592
    assert isinstance(u.input_blocks[1], AudioConcatBlock)


def test_parameter_table_sums():
    u = UNetModel(**SMALL)
    assert sum(n for *_, n in parameter_table(u)) == sum(p.numel() for p in u.parameters())


def test_full_unet_count():
    u = UNetModel()
    assert sum(p.numel() for p in u.parameters()) == 102_015_888


def _nonzero(u):
    torch.manual_seed(3)
    for p in u.parameters():
        if p.ndim > 1 and p.abs().sum() == 0:
            torch.nn.init.normal_(p, std=0.05)
    return u.eval()


def test_inference_fast_paths_give_the_same_numbers():
    from mug_nb.unet import use_matmul_pointwise, cache_prompt_kv, PointwiseConv1d, MemoLinear
    u = _nonzero(UNetModel(**{**SMALL, "channel_mult": (1, 2, 2, 2), "attention_resolutions": (8, 4)}))
    x, c, w = torch.randn(2, 16, 64), torch.randn(2, 32, 21), audio(2, 64, SMALL["audio_channels"])
    t = torch.tensor([5, 700])
    with torch.no_grad():
        u.cache_audio = False
        plain = u(x, t, c, *w)
        u.cache_audio = True
        fast = u(x, t, c, *w)
        assert u._audio_cache is not None and (fast - plain).abs().max() < 1e-5
        assert use_matmul_pointwise(u) > 0 and cache_prompt_kv(u) > 0
        assert any(type(m) is PointwiseConv1d for m in u.modules()) and any(type(m) is MemoLinear for m in u.modules())
        a, b = u(x, t, c, *w), u(x, t, c, *w)
        assert (a - plain).abs().max() < 1e-5 and torch.equal(a, b)
        # new audio or a new prompt is never confused with the cached one
        w2 = [wi + 1 for wi in w]
        u.cache_audio = False; ref2 = u(x, t, c + 1, *w2); u.cache_audio = True
        assert (u(x, t, c + 1, *w2) - ref2).abs().max() < 1e-5
    # with autograd the plain path runs and gradients flow
    u.train()
    u(x, t, c, *w).square().mean().backward()
    assert u.input_blocks[2][0].in_layers[2].weight.grad is not None


def test_lstm_option_and_no_s4():
    u = UNetModel(**{**SMALL, "lstm_layer": True, "s4_layer": False})
    names = [n for n, _ in u.named_parameters()]
    assert any(".lstm.weight_ih_l0" in n for n in names) and not any("s4_model" in n for n in names)
    lstm = [m for m in u.modules() if isinstance(m, torch.nn.LSTM)]
    assert lstm and all(p.abs().sum() == 0 for m in lstm for p in m.parameters())   # zero-initialised
    x = torch.randn(1, 16, 64)
    with torch.no_grad():
        assert u(x, torch.tensor([3]), torch.randn(1, 32, 21), *audio(1, 64, SMALL["audio_channels"])).shape == x.shape


def test_guided_halves_share_the_prefix_and_give_the_same_numbers():
    from mug_nb.s4 import S4Layer
    u = _nonzero(UNetModel(**SMALL))
    x, t = torch.randn(2, 16, 64), torch.tensor([5, 700])
    c2, w = torch.randn(4, 32, 21), audio(2, 64, SMALL["audio_channels"])
    w2 = [torch.cat([a, a]) for a in w]
    seen = []                                     # batch seen by the level-0 S4 layer (before any attention)
    hook = next(m for m in u.input_blocks[2] if isinstance(m, S4Layer)).register_forward_hook(
        lambda m, i, o: seen.append(i[0].shape[0]))
    with torch.no_grad():
        ref = u(torch.cat([x, x]), torch.cat([t, t]), c2, *w2)
        for cache in (False, True):
            u.cache_audio = cache
            out = u(x, t, c2, *w2, halves=True)
            assert out.shape == ref.shape and (out - ref).abs().max() < 1e-5
    hook.remove()
    assert seen == [4, 2, 2]                      # doubled batch, then one half with and without audio constants
    assert (ref[:2] - ref[2:]).abs().max() > 1e-4   # the prompt matters after the attention
    with pytest.raises(UNetError, match="halves=True"):
        u(x, t, c2[:2], *w2, halves=True)
    v = _nonzero(UNetModel(**{**SMALL, "attention_resolutions": ()}))   # attention only in the middle block
    with torch.no_grad():
        out = v(x, t, c2, *w2, halves=True)
        assert out.shape == (4, 16, 64) and (out - v(torch.cat([x, x]), torch.cat([t, t]), c2, *w2)).abs().max() < 1e-5


def test_prompt_embedding_starts_neutral_then_carries_the_prompt():
    kw = dict(model_channels=32, channel_mult=(1, 2, 2, 2), num_res_blocks=1, num_heads=4, context_dim=32,
              audio_channels=(32, 32, 32, 32), attention_resolutions=(8,), s4_mode="exact")
    torch.manual_seed(0)
    plain = UNetModel(**kw).eval()
    with torch.no_grad():
        for p in plain.parameters():
            if p.ndim > 1 and p.abs().sum() == 0: p.normal_(0, 0.05)
    pe = UNetModel(**kw, prompt_embedding=True).eval()
    missing = pe.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith("prompt_embed.") for k in missing)
    x, t, c = torch.randn(2, 16, 64), torch.tensor([10, 900]), torch.randn(2, 32, 21)
    w = [torch.randn(2, ch, 64 // 2 ** i) for i, ch in enumerate(kw["audio_channels"])]
    with torch.no_grad():
        assert torch.allclose(pe(x, t, c, *w), plain(x, t, c, *w), atol=1e-6)     # zero-initialised: no change
        pe.prompt_embed[-1].weight.normal_(0, 0.05)
        a, b = pe(x, t, c, *w), pe(x, t, c + 1, *w)
        c2, w2 = torch.cat([c * 0, c]), [torch.cat([m, m]) for m in w]
        shared, doubled = pe(x, t, c2, *w2, halves=True), pe(torch.cat([x, x]), torch.cat([t, t]), c2, *w2)
    assert (a - b).abs().mean() > 1e-3
    assert shared.shape == doubled.shape and (shared - doubled).abs().max() < 1e-5
