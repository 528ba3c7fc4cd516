"""`mug_nb.fast`: every inference rewrite gives the reference model's numbers (float rounding aside), keeps its
parameters and state dict, takes the plain path in training and autograd, and is applied by `optimize_for_inference`."""
import copy

import pytest
import torch

from mug_nb.encoders import CrossAttention, BasicTransformerBlock
from mug_nb.unet import UNetModel, UNetError
from mug_nb.model import Config, build_model, MugDiffusionWrapper
from mug_nb.diffusion import ddim_sample, _guided_eps
from mug_nb.fast import (optimize_for_inference, REWRITES, FastError, adopt, replace_modules, FastUNet,
                         GuidedHalvesWrapper, FastAttention, PromptAttention, PointwiseConv1d, PackedLinear, in_place,
                         WinogradConv1d, audio_blocks, fast_attention, fold_prompt, winograd_convs, onednn_packing)

torch.set_num_threads(1)
SMALL = dict(model_channels=32, channel_mult=(1, 2, 2, 2), num_res_blocks=1, num_heads=4, context_dim=32,
             audio_channels=(32, 32, 32, 32), attention_resolutions=(8,), s4_mode="exact")


def audio(B, L, chans):
    return [torch.randn(B, c, L // 2 ** i) for i, c in enumerate(chans)]


def nonzero(m, seed=3):
    "Random values for the zero-initialised parameters, so that every layer matters."
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            if p.abs().sum() == 0: p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return m.eval()


def close(a, b, rel=1e-5):
    return a.shape == b.shape and (a - b).abs().max() <= rel * (1 + b.abs().max())


def tiny_inputs(m, B=2, L=64, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        w = m.model.wave_model(torch.rand(1, 128, 64 * L, generator=g))
        ids = torch.randint(0, 329, (B, 21), generator=g)
        c, uc = m.model.cond_stage_model(ids), m.model.cond_stage_model(torch.zeros_like(ids))
    return torch.randn(B, 16, L, generator=g), torch.tensor([5, 700][:B]), c, uc, [a.expand(B, -1, -1) for a in w]


def test_reference_model_has_only_the_original_layer_types():
    m = build_model(Config.tiny())
    kinds = {type(x).__module__ for x in m.modules()}
    assert "mug_nb.fast" not in kinds and type(m.model) is MugDiffusionWrapper and type(m.model.unet_model) is UNetModel
    assert not hasattr(m.model, "shares_guided_halves")
    for x in m.modules():
        assert type(x) in (torch.nn.Linear, torch.nn.Conv1d) or not isinstance(x, (torch.nn.Linear, torch.nn.Conv1d))


def test_optimize_for_inference_keeps_the_state_dict_and_the_numbers():
    ref = nonzero(build_model(Config.tiny()))
    x, t, c, uc, w = tiny_inputs(ref)
    fast = optimize_for_inference(copy.deepcopy(ref))
    assert fast.rewrites == REWRITES and type(fast.model) is GuidedHalvesWrapper and type(fast.model.unet_model) is FastUNet
    assert list(fast.state_dict()) == list(ref.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(fast.state_dict().values(), ref.state_dict().values()))
    with torch.no_grad():
        assert close(fast.model(x, t, c, w), ref.model(x, t, c, w))
        assert close(_guided_eps(fast.model, x, t, c, w, 5.0, uc), _guided_eps(ref.model, x, t, c, w, 5.0, uc))
    assert optimize_for_inference(fast) is fast and fast.rewrites == REWRITES      # twice: nothing more to do
    with pytest.raises(FastError, match="unknown"):
        optimize_for_inference(fast, rewrites=("turbo",))


@pytest.mark.parametrize("leave_out", REWRITES)
def test_each_rewrite_can_be_left_out(leave_out):
    ref = nonzero(build_model(Config.tiny()))
    x, t, c, uc, w = tiny_inputs(ref)
    fast = optimize_for_inference(copy.deepcopy(ref), rewrites=[r for r in REWRITES if r != leave_out],
                                  winograd_min_channels=16)
    assert leave_out not in fast.rewrites
    with torch.no_grad():
        assert close(_guided_eps(fast.model, x, t, c, w, 5.0, uc), _guided_eps(ref.model, x, t, c, w, 5.0, uc))


def test_cpu_rewrites_leave_other_devices_alone():
    m = build_model(Config.tiny()).to("meta")
    optimize_for_inference(m)
    assert not any(r in m.rewrites for r in ("pointwise", "packed", "winograd")) and "halves" in m.rewrites
    assert not any(isinstance(x, (PointwiseConv1d, PackedLinear, WinogradConv1d)) for x in m.modules())


def test_training_after_the_rewrites_takes_the_plain_path():
    ref = nonzero(build_model(Config.tiny()))
    fast = optimize_for_inference(copy.deepcopy(ref)).train()
    ref.train()
    note, ids, mel = torch.rand(2, 16, 512), torch.randint(0, 329, (2, 21)), torch.rand(2, 128, 4096)
    t, noise = torch.tensor([3, 900]), torch.randn(2, 16, 64)
    a, _ = ref.training_loss(note, ids, mel, t=t, noise=noise)
    b, _ = fast.training_loss(note, ids, mel, t=t, noise=noise)
    b.backward()
    assert torch.allclose(a, b, atol=1e-6) and fast.model.unet_model.out[2].weight.grad is not None


def test_adopt_and_replace_modules():
    seq = torch.nn.Sequential(torch.nn.Conv1d(4, 4, 1), torch.nn.Sequential(torch.nn.Conv1d(4, 4, 1)))
    w = seq[1][0].weight
    n = replace_modules(seq, lambda name, m: adopt(PointwiseConv1d, m) if type(m) is torch.nn.Conv1d else None)
    assert n == 2 and type(seq[1][0]) is PointwiseConv1d and seq[1][0].weight is w
    with pytest.raises(FastError, match="not a kind of"):
        adopt(PromptAttention, torch.nn.Linear(2, 2))


def test_audio_blocks_find_each_levels_audio_channels():
    u = UNetModel(**SMALL)
    blocks = audio_blocks(u)
    assert len(blocks) == 8
    (rb0, (a0, a1)), (rb_up, (b0, b1)) = blocks[0], blocks[4]
    assert rb0 is u.input_blocks[2][0] and (a0, a1) == (32, 64) and rb0.channels == 64
    assert rb_up is u.output_blocks[1][0] and b1 - b0 == 32 and rb_up.channels == b1 + 64   # [h; audio; skip]


def test_audio_once_and_new_inputs_are_never_confused():
    u = nonzero(UNetModel(**{**SMALL, "attention_resolutions": (8, 4)}))
    f = FastUNet.from_unet(copy.deepcopy(u))
    x, c, w, t = torch.randn(2, 16, 64), torch.randn(2, 32, 21), audio(2, 64, SMALL["audio_channels"]), torch.tensor([5, 700])
    with torch.no_grad():
        assert close(f(x, t, c, *w), u(x, t, c, *w)) and f._audio_memo is not None
        w2 = [a + 1 for a in w]
        assert close(f(x, t, c + 1, *w2), u(x, t, c + 1, *w2))                  # new audio, new prompt
        w2[0].mul_(2)                                                            # changed in place
        assert close(f(x, t, c, *w2), u(x, t, c, *w2))
    f.train(); u.train()
    f(x, t, c, *w).square().mean().backward()                                   # autograd: the plain path
    assert f.input_blocks[2][0].in_layers[2].weight.grad is not None


def test_guided_halves_share_the_prefix_and_give_the_same_numbers():
    from mug_nb.s4 import S4Layer
    u = nonzero(UNetModel(**SMALL))
    f = FastUNet.from_unet(copy.deepcopy(u))
    x, t = torch.randn(2, 16, 64), torch.tensor([5, 700])
    c2, w = torch.randn(4, 32, 21), audio(2, 64, SMALL["audio_channels"])
    w2 = [torch.cat([a, a]) for a in w]
    seen = []                                     # batch seen by the level-0 S4 layer (before any attention)
    hook = next(m for m in f.input_blocks[2] if isinstance(m, S4Layer)).register_forward_hook(
        lambda m, i, o: seen.append(i[0].shape[0]))
    with torch.no_grad():
        ref = u(torch.cat([x, x]), torch.cat([t, t]), c2, *w2)
        for cache in (False, True):
            f.cache_audio = cache
            out = f(x, t, c2, *w2, halves=True)
            assert out.shape == ref.shape and (out - ref).abs().max() < 1e-5
    hook.remove()
    assert seen == [2, 2]                         # one half, with and without audio constants
    assert (ref[:2] - ref[2:]).abs().max() > 1e-4   # the prompt matters after the attention
    with pytest.raises(UNetError, match="halves=True"):
        f(x, t, c2[:2], *w2, halves=True)
    v = nonzero(UNetModel(**{**SMALL, "attention_resolutions": ()}))   # attention only in the middle block
    fv = FastUNet.from_unet(copy.deepcopy(v))
    with torch.no_grad():
        assert close(fv(x, t, c2, *w2, halves=True), v(torch.cat([x, x]), torch.cat([t, t]), c2, *w2))
    pe = nonzero(UNetModel(**SMALL, prompt_embedding=True))          # the prompt in every block: doubled at once
    fpe = FastUNet.from_unet(copy.deepcopy(pe))
    with torch.no_grad():
        assert close(fpe(x, t, c2, *w2, halves=True), pe(torch.cat([x, x]), torch.cat([t, t]), c2, *w2))


def test_guided_sampling_with_halves_gives_the_same_latents():
    """ddim_sample uses `halves=True` for an optimized model; the reference (doubled batch) gives the same latents."""
    ref = nonzero(build_model(Config.tiny()))
    fast = optimize_for_inference(copy.deepcopy(ref))
    assert fast.model.shares_guided_halves
    x, t, c, uc, w = tiny_inputs(ref)
    with torch.inference_mode():
        a = ddim_sample(fast, (2, 16, 64), c, w, 5, cfg_scale=5.0, uc=uc, x_T=x)
        b = ddim_sample(ref, (2, 16, 64), c, w, 5, cfg_scale=5.0, uc=uc, x_T=x)
    assert (a - b).abs().max() / b.abs().max() < 1e-5 and b.abs().max() > 0


def test_fast_attention_chunks_and_tables():
    att = nonzero(CrossAttention(16, heads=2, dim_head=8))
    with torch.no_grad():
        att.relative_position_embedding.normal_(); att.C_embedding.uniform_(0.5, 1.5)
    fa = fast_attention("attn1", copy.deepcopy(att))
    assert type(fa) is FastAttention
    fa.chunk = 2 * 2 * 50 * 7                                                   # 7 queries per chunk
    x = torch.randn(2, 50, 16)
    with torch.inference_mode():
        full = fa(x)
        assert close(full, att(x)) and torch.equal(fa(x), full)
    with torch.no_grad():                                                       # a changed table is seen
        fa.C_embedding.mul_(2.0); att.C_embedding.mul_(2.0)
        assert close(fa(x), att(x))
    y = fa(x)                                                                    # autograd: the reference path
    assert torch.equal(y, att(x)) and y.requires_grad


def test_fast_attention_table_memo_is_safe_for_frozen_training():
    att = fast_attention("attn1", nonzero(CrossAttention(16, heads=2, dim_head=8)))
    x = torch.randn(1, 12, 16)
    with torch.inference_mode():
        ref = att(x)                                                            # memo filled under inference mode
    att.requires_grad_(False)
    xin = x.clone().requires_grad_(True)
    out = att(xin)
    out.sum().backward()
    assert xin.grad is not None and torch.allclose(out, ref, atol=1e-6)


def test_fast_transformer_block_in_place_matches():
    blk = nonzero(BasicTransformerBlock(32, 4, 8, context_dim=16))
    holder = torch.nn.ModuleList([copy.deepcopy(blk)])
    assert replace_modules(holder, fast_attention) == 2          # attn1, attn2
    assert replace_modules(holder, in_place) == 2                # the GEGLU and the block itself
    assert replace_modules(holder, fold_prompt) == 1 and type(holder[0].attn2) is PromptAttention
    x, c = torch.randn(2, 30, 32), torch.randn(2, 21, 16)
    with torch.no_grad(): assert close(holder[0](x, c), blk(x, c))


def test_compat_golden_through_optimize_for_inference(compat, compat_model):
    "The committed fixture's U-Net outputs and DDIM runs (guided and not), replayed in order by the optimized model."
    g, meta = compat.golden, compat.meta
    m = optimize_for_inference(compat_model(), winograd_min_channels=16)    # the fixture is narrow: every conv
    assert any(isinstance(x, WinogradConv1d) for x in m.modules()) and m.model.shares_guided_halves
    err = lambda a, b: (a - b).abs().max().item()
    S, n = meta["setup_latent"], meta["setup_latent"] * meta["mel_per_latent"]
    with torch.inference_mode():
        c = m.model.cond_stage_model(g["prompt_ids"])
        w = m.model.wave_model(g["wave_in"])
        assert max(err(a, b) for a, b in zip(w, g["wave_out"])) < 1e-4
        setup = lambda: m(g["unet_x"][:1, :, :S], g["setup_t"], c[1:2], m.model.wave_model(g["wave_in"][:1, :, :n]))
        assert err(setup(), g["setup_eps_reloaded"]) < 1e-4
        assert err(m(g["unet_x"], g["unet_t"], g["unet_context"], w), g["unet_eps"]) < 1e-4
        assert err(setup(), g["setup_eps_after_doubling"]) < 1e-4
        shape = tuple(g["ddim_x_T"].shape[1:])
        x = ddim_sample(m, (2, *shape), g["ddim_c"], w, meta["ddim_S"], cfg_scale=meta["cfg_scale"], uc=g["ddim_uc"],
                        eta=meta["ddim_eta"], x_T=g["ddim_x_T"])
        assert err(x, g["ddim_samples"]) / g["ddim_samples"].abs().max() < 1e-4
        xu = ddim_sample(m, (1, *shape), g["ddim_c"][:1], [a[1:] for a in w], meta["ddim_unguided_S"], x_T=g["ddim_x_T"][1:])
        assert err(xu, g["ddim_unguided_samples"]) / g["ddim_unguided_samples"].abs().max() < 1e-4


def test_in_place_resnet_block_matches():
    from mug_nb.vae import ResnetBlock
    blk = nonzero(ResnetBlock(in_channels=16, out_channels=32, temb_channels=0, num_groups=8, dilations=(1, 2)))
    holder = torch.nn.ModuleList([copy.deepcopy(blk)])
    assert replace_modules(holder, in_place) == 1
    x = torch.randn(2, 16, 50)
    with torch.no_grad(): assert torch.equal(holder[0](x), blk(x)) and torch.equal(x, x.clone())
    y = holder[0](x.requires_grad_())
    assert torch.equal(y, blk(x)) and y.requires_grad
