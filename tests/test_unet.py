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


def test_forward_is_the_textbook_loop():
    "UNetModel.forward fits on a screen: no caches, no halves, nothing but the U-Net."
    import inspect
    src = inspect.getsource(UNetModel.forward)
    assert len(src.splitlines()) <= 20 and "halves" not in src and "cache" not in src
    assert not any(k.startswith("_") and "cache" in k for k in vars(UNetModel(**SMALL)))


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


def test_backward_reaches_every_level():
    u = _nonzero(UNetModel(**SMALL)).train()
    x, c, w = torch.randn(2, 16, 64), torch.randn(2, 32, 21), audio(2, 64, SMALL["audio_channels"])
    u(x, torch.tensor([5, 700]), c, *w).square().mean().backward()
    assert u.input_blocks[2][0].in_layers[2].weight.grad is not None and u.output_blocks[-1][0].skip_connection.weight.grad is not None


def test_lstm_option_and_no_s4():
    u = UNetModel(**{**SMALL, "lstm_layer": True, "s4_layer": False})
    names = [n for n, _ in u.named_parameters()]
    assert any(".lstm.weight_ih_l0" in n for n in names) and not any("s4_model" in n for n in names)
    lstm = [m for m in u.modules() if isinstance(m, torch.nn.LSTM)]
    assert lstm and all(p.abs().sum() == 0 for m in lstm for p in m.parameters())   # zero-initialised
    x = torch.randn(1, 16, 64)
    with torch.no_grad():
        assert u(x, torch.tensor([3]), torch.randn(1, 32, 21), *audio(1, 64, SMALL["audio_channels"])).shape == x.shape


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
    assert (a - b).abs().mean() > 1e-3
