"""Tests of mug_nb.encoders: prompt embedder, MuG attention, audio encoder; names, sizes and the original's numbers."""
from dataclasses import asdict

import pytest
import torch
import yaml

from conftest import original_keys
from mug_nb.model import config_from_original
from mug_nb.encoders import (BasicTransformerBlock, BeatmapFeatureEmbedder, ContextualTransformer, CrossAttention,
                             EncoderError, MelspectrogramScaleEncoder1D, relative_index)

FULL_WAVE = dict(n_freq=128, middle_channels=128, attention_resolutions=[128, 256, 512], num_res_blocks=2,
                 num_heads=8, num_groups=32, dropout=0.0, use_checkpoint=True, channel_mult=[1, 1, 1, 1, 2, 2, 2, 4, 4, 4])
SMALL_WAVE = dict(FULL_WAVE, middle_channels=16, num_heads=4, num_groups=8)  # the wider ../shared compat_golden


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def reference_keys(prefix):
    "The original's state-dict names (below `prefix`) and shapes for the released config (tests/compat)."
    return [(k[len(prefix):], s) for k, s in original_keys() if k.startswith(prefix)]


def our_keys(module):
    return [(k, str(list(v.shape))) for k, v in module.state_dict().items()]


def naive_attention(att, x, context=None):
    """The formula of the reference (§6.4), one query, head and key at a time."""
    context = x if context is None else context
    q, k, v = att.to_q(x), att.to_k(context), att.to_v(context)
    B, n, _ = q.shape
    m, h, d = k.shape[1], att.heads, att.dim_head
    P, C, M = att.relative_position_embedding, att.C_embedding, att.position_max_embedding
    out = torch.zeros(B, n, h * d)
    for b in range(B):
        for hh in range(h):
            sl = slice(hh * d, (hh + 1) * d)
            for i in range(n):
                r = [min(max(j - i, -M), M) + M for j in range(m)]
                logits = torch.stack([(q[b, i, sl] @ k[b, j, sl] + P[r[j], hh]) * d ** -0.5 for j in range(m)])
                w = logits.softmax(0) * torch.stack([C[r[j], hh] for j in range(m)])
                out[b, i, sl] = (w[:, None] * v[b, :, sl]).sum(0)
    return att.to_out(out)


def randomise(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))


def test_embedder_size_and_shape():
    emb = BeatmapFeatureEmbedder(128)
    assert n_params(emb) == 42_112
    ids = torch.randint(0, 329, (3, 21))
    out = emb(ids.float())
    assert out.shape == (3, 128, 21)
    assert torch.equal(out[1, :, 4], emb.embedding.weight[ids[1, 4]])
    with pytest.raises(EncoderError):
        emb(torch.zeros(21, dtype=torch.long))


def test_relative_index_clamps():
    r = relative_index(200, 21)
    assert r.shape == (200, 21) and r.min() == 0 and r.max() == 84
    assert r[0, 0] == 64 and r[0, 20] == 84 and r[150, 0] == 0 and r[10, 3] == 64 - 7


@pytest.mark.parametrize("n,m,ctx", [(9, 9, False), (70, 70, False), (5, 21, True), (90, 21, True)])
def test_attention_matches_formula(n, m, ctx):
    torch.manual_seed(n)
    att = CrossAttention(16, context_dim=12 if ctx else None, heads=2, dim_head=8)
    randomise(att)
    x, c = torch.randn(2, n, 16), (torch.randn(2, m, 12) if ctx else None)
    with torch.no_grad():
        ours, ref = att(x, c), naive_attention(att, x, c)
    assert torch.allclose(ours, ref, atol=1e-5), (ours - ref).abs().max()


def test_attention_sees_changed_tables():
    att = CrossAttention(16, heads=2, dim_head=8)
    randomise(att, 1)
    att.eval()
    x = torch.randn(2, 50, 16)
    with torch.inference_mode():
        full = att(x)
    with torch.no_grad():
        att.C_embedding.mul_(2.0)
    with torch.inference_mode():
        changed = att(x)
    assert not torch.allclose(changed, full)
    with torch.no_grad():
        assert torch.allclose(changed, naive_attention(att, x), atol=1e-5)


def test_attention_gradients_reach_tables():
    att = CrossAttention(16, heads=2, dim_head=8)
    att(torch.randn(1, 10, 16)).sum().backward()
    assert att.relative_position_embedding.grad is not None and att.C_embedding.grad.abs().sum() > 0


def test_plain_cross_attention_option():
    blk = BasicTransformerBlock(32, 4, 8, context_dim=16, cross_relative_position=False)
    names = dict(blk.named_parameters())
    assert "attn1.C_embedding" in names and "attn2.C_embedding" not in names
    assert blk(torch.randn(2, 30, 32), torch.randn(2, 21, 16)).shape == (2, 30, 32)


def test_contextual_transformer_identity_at_init_and_checkpointing():
    ct = ContextualTransformer(64, 4, 16, context_dim=32)
    x, c = torch.randn(2, 64, 40), torch.randn(2, 32, 21)
    assert torch.equal(ct(x, c), x)
    randomise(ct)
    ct.train()
    x.requires_grad_(True)
    y = ct(x, c)  # checkpoint=True: recomputed in backward, same values
    y.sum().backward()
    ct.eval()
    assert torch.allclose(ct(x, c), y, atol=1e-6) and x.grad is not None


def test_wave_encoder_levels():
    enc = MelspectrogramScaleEncoder1D(**SMALL_WAVE)
    outs = enc(torch.randn(1, 128, 2048))
    assert len(outs) == 10
    assert [tuple(o.shape[1:]) for o in outs][-4:] == [(32, 32), (64, 16), (64, 8), (64, 4)]
    with pytest.raises(EncoderError):
        enc(torch.randn(1, 64, 2048))


def test_full_sizes():
    assert n_params(MelspectrogramScaleEncoder1D(**FULL_WAVE)) == 49_392_192


def test_names_equal_original():
    assert our_keys(MelspectrogramScaleEncoder1D(**FULL_WAVE)) == reference_keys("model.wave_model.")
    assert our_keys(BeatmapFeatureEmbedder(128)) == reference_keys("model.cond_stage_model.")
    ct = ContextualTransformer(256, 8, 32, context_dim=128, checkpoint=False)  # a U-Net transformer at 256 channels
    assert our_keys(ct) == reference_keys("model.unet_model.input_blocks.6.1.")


@pytest.fixture(scope="module")
def golden(compat):
    "(state dict, outputs, Config) of the committed compat fixture (tests/compat)."
    return compat.sd, compat.golden, config_from_original(yaml.safe_load(compat.config.read_text()))


def sub(sd, prefix):
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


def test_compat_prompt_embedding(golden):
    sd, g, cfg = golden
    emb = BeatmapFeatureEmbedder(cfg.prompt.embed_dim).eval()
    emb.load_state_dict(sub(sd, "model.cond_stage_model."))
    with torch.inference_mode():
        assert torch.allclose(emb(g["prompt_ids"]), g["cond_out"], atol=1e-4, rtol=0)


def test_compat_audio_encoder(golden):
    sd, g, cfg = golden
    enc = MelspectrogramScaleEncoder1D(**asdict(cfg.audio)).eval()
    enc.load_state_dict(sub(sd, "model.wave_model."))
    with torch.inference_mode():
        outs = enc(g["wave_in"])
        long = enc(torch.cat([g["wave_in"][:1]] * (g["long_x"].shape[-1] // g["unet_x"].shape[-1]), dim=-1))[-4:]
    assert len(outs) == len(g["wave_out"]) == 10
    for ours, ref in zip(outs, g["wave_out"]):
        assert ours.shape == ref.shape and torch.allclose(ours, ref, atol=1e-4, rtol=0), (ours - ref).abs().max()
    for ours, ref in zip(long, g["wave_long_out_last4"]):
        assert ours.shape == ref.shape and torch.allclose(ours, ref, atol=1e-4, rtol=0), (ours - ref).abs().max()


def test_table_cache_is_safe_for_frozen_training():
    att = CrossAttention(16, heads=2, dim_head=8)
    randomise(att, 2)
    x = torch.randn(1, 12, 16)
    with torch.inference_mode():
        ref = att(x)  # fills the cache with inference tensors
    att.requires_grad_(False)  # frozen attention inside a model that trains something upstream
    xin = x.clone().requires_grad_(True)
    out = att(xin)
    out.sum().backward()
    assert xin.grad is not None and torch.allclose(out, ref, atol=1e-6)


def test_module_built_under_inference_mode():
    with torch.inference_mode():
        ct = ContextualTransformer(64, 4, 16, context_dim=32)
        randomise(ct)
        x, c = torch.randn(2, 64, 30), torch.randn(2, 32, 21)
        a, b = ct(x, c), ct(x, c)
    assert torch.equal(a, b)


def test_onset_features_fold_note_frames_into_channels():
    from mug_nb.encoders import onset_features
    mel = torch.zeros(1, 128, 64 * 3)
    mel[:, :32, 8 * 5 + 3:] = 2.0           # a low-band step inside note frame 5 (latent frame 0, slot 5)
    mel[:, 96:, 64 * 2 + 8:] = 1.0          # a high-band step in note frame 17 (latent frame 2, slot 1)
    f = onset_features(mel, bands=4)
    assert f.shape == (1, 32, 3)
    nz = {tuple(i) for i in torch.nonzero(f[0]).tolist()}
    assert nz == {(0 * 8 + 5, 0), (3 * 8 + 1, 2)}
    assert f[0, 5, 0] == pytest.approx(2.0) and f[0, 25, 2] == pytest.approx(1.0)
    assert onset_features(torch.zeros(2, 128, 100)).shape == (2, 32, 2)      # a partial latent frame is padded


def test_onset_features_reject_uneven_bands():
    from mug_nb.encoders import EncoderError, onset_features
    with pytest.raises(EncoderError, match="do not split"):
        onset_features(torch.zeros(1, 128, 64), bands=3)


def test_encoder_appends_onset_channels_without_new_weights():
    from mug_nb.encoders import MelspectrogramScaleEncoder1D
    kw = dict(n_freq=128, middle_channels=8, num_heads=4, num_groups=8)
    plain, onset = MelspectrogramScaleEncoder1D(**kw), MelspectrogramScaleEncoder1D(**kw, onset_bands=2)
    onset.load_state_dict(plain.state_dict())
    x = torch.rand(1, 128, 1024)
    a, b = plain(x), onset(x)
    assert b[6].shape[1] == a[6].shape[1] + 16
    assert torch.allclose(b[6][:, :a[6].shape[1]], a[6]) and all(torch.equal(p, q) for p, q in zip(a[7:], b[7:]))
