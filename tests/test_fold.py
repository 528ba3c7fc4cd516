"Cross-attention with the prompt folded into the query and output projections (`mug_nb.fast.PromptAttention`)."
import copy

import torch
from torch import nn

from mug_nb.encoders import CrossAttention
from mug_nb.fast import PromptAttention, fold_prompt, replace_modules, fast_attention


def close(a, b, tol=1e-5):
    "Equal up to float32 rounding, relative to the size of the values."
    return (a - b).abs().max() <= tol * (1 + b.abs().max())


def pair(dim=64, heads=4, context_dim=24, seed=0):
    "A plain cross-attention with random (non-trivial) weights and tables, and a folded copy of it."
    torch.manual_seed(seed)
    holder = nn.Module()
    holder.attn2 = CrossAttention(dim, context_dim=context_dim, heads=heads, dim_head=dim // heads).eval()
    with torch.no_grad():
        for p in holder.attn2.parameters(): p.normal_(0, 0.2)
    plain = copy.deepcopy(holder.attn2)
    assert replace_modules(holder, fold_prompt) == 1 and type(holder.attn2) is PromptAttention
    return plain, holder.attn2


def test_folded_matches_plain_attention():
    plain, folded = pair()
    x, c = torch.randn(2, 150, 64), torch.randn(2, 21, 24)    # 150 queries: past the 64-bucket clamp
    with torch.no_grad():
        ref, out = plain(x, c), folded(x, c)
        assert close(out, ref) and ref.abs().max() > 0.1
        one = folded(x, c[:1])                               # one prompt for the whole batch
        assert close(one, plain(x, c[:1]))
    with torch.inference_mode(): assert close(folded(x, c), ref)


def test_fold_memo_follows_prompt_and_weights():
    plain, folded = pair(seed=1)
    x, c = torch.randn(1, 40, 64), torch.randn(1, 21, 24)
    with torch.no_grad():
        folded(x, c); G = folded._fold_memo[1][0]
        folded(x, c); assert folded._fold_memo[1][0] is G           # same prompt: reused
        c2 = c + 1
        assert close(folded(x, c2), plain(x, c2))    # a new prompt: rebuilt
        c2.mul_(2)                                                  # the same tensor changed in place
        assert close(folded(x, c2), plain(x, c2))
        for a, b in ((folded.to_q, plain.to_q), (folded.to_out[0], plain.to_out[0]), (folded.to_v, plain.to_v)):
            a.weight.mul_(1.5); b.weight.mul_(1.5)
            assert close(folded(x, c2), plain(x, c2))
        folded.relative_position_embedding.add_(0.3); plain.relative_position_embedding.add_(0.3)
        folded.C_embedding.mul_(0.7); plain.C_embedding.mul_(0.7)
        assert close(folded(x, c2), plain(x, c2))   # the folded tables too


def test_training_autograd_and_tracing_take_the_plain_path():
    plain, folded = pair(seed=2)
    x, c = torch.randn(2, 30, 64), torch.randn(2, 21, 24)
    assert torch.equal(folded(x, c), plain(x, c))                   # autograd on: bit for bit the plain path
    assert getattr(folded, "_fold_memo", None) is None
    folded.train(); plain.train()
    with torch.no_grad(): assert torch.equal(folded(x, c), plain(x, c))
    folded.eval()
    with torch.no_grad():
        folded(x, c)                                                # a warm memo must not be baked into a trace
        traced = torch.jit.trace(folded, (x, c), check_trace=False)
        c2 = torch.randn(2, 21, 24)
        assert close(traced(x, c2), plain(x, c2))    # the prompt is an input, not a baked constant


def test_weights_made_under_inference_mode_are_not_memoised():
    with torch.inference_mode():
        plain, folded = pair(seed=3)
        x, c = torch.randn(1, 20, 64), torch.randn(1, 21, 24)
        assert close(folded(x, c), plain(x, c))
    assert getattr(folded, "_fold_memo", None) is None


def test_fold_prompt_rewrites_only_relative_cross_attention():
    holder = nn.Module()
    holder.attn1 = CrossAttention(32, heads=4, dim_head=8)
    holder.attn2 = CrossAttention(32, context_dim=16, heads=4, dim_head=8)
    holder.other = nn.Module(); holder.other.attn2 = CrossAttention(32, context_dim=16, heads=4, dim_head=8,
                                                                     relative_position=False)
    assert replace_modules(holder, fold_prompt) == 1
    assert type(holder.attn1) is CrossAttention and type(holder.other.attn2) is CrossAttention
    assert replace_modules(holder, fold_prompt) == 0                 # already folded
    assert replace_modules(holder, fast_attention) == 2 and type(holder.attn2) is PromptAttention
