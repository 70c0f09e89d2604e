"""Hidden tests of assignment 03's exercises: perplexity values, the LSTM's state, causal attention
computed by hand, the GPT block's two orders, sampling's masking."""

from __future__ import annotations

import math

import pytest
import torch

from course_lib.lm.models import CausalSelfAttention, GPTBlock, LSTMLanguageModel
from course_lib.lm.sampling import sample_next
from course_lib.lm.train import perplexity


@pytest.mark.exercise("perplexity")
@pytest.mark.parametrize("loss", [0.0, 1.5, math.log(250.0)])
def test_perplexity_values(loss):
    assert perplexity(loss) == pytest.approx(math.exp(loss), rel=1e-12)


@pytest.mark.exercise("perplexity")
def test_perplexity_overflows_to_inf():
    assert perplexity(1e4) == math.inf


@pytest.mark.exercise("LSTMLanguageModel.forward")
def test_lstm_forward_two_halves_equal_the_whole():
    torch.manual_seed(5)
    lm = LSTMLanguageModel(17, 2, hidden=8, dropout=0.3, emb_dim=6).eval()
    tokens = torch.randint(0, 17, (3, 10))
    whole, (h, c) = lm(tokens)
    first, state = lm(tokens[:, :4])
    second, (h2, c2) = lm(tokens[:, 4:], state)
    assert whole.shape == (3, 10, 17) and h.shape == (2, 3, 8)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole)
    torch.testing.assert_close(h2, h)
    torch.testing.assert_close(c2, c)


@pytest.mark.exercise("CausalSelfAttention.attention_weights")
def test_attention_weights_by_hand():
    torch.manual_seed(6)
    attn = CausalSelfAttention(8, 2, dropout=0.0).eval()
    x = torch.randn(2, 5, 8)
    weights, values = attn.attention_weights(x)
    q, k, v = attn.qkv(x).split(8, dim=-1)
    heads = [(slice(0, 4)), slice(4, 8)]
    for h, cols in enumerate(heads):
        scores = q[..., cols] @ k[..., cols].transpose(1, 2) / 2.0
        scores = scores.masked_fill(torch.ones(5, 5, dtype=torch.bool).triu(1), float("-inf"))
        torch.testing.assert_close(weights[:, h], scores.softmax(-1))
        torch.testing.assert_close(values[:, h], v[..., cols])


@pytest.mark.exercise("CausalSelfAttention.forward")
def test_attention_forward_by_hand_and_causal():
    torch.manual_seed(7)
    attn = CausalSelfAttention(6, 3, dropout=0.0).eval()
    x = torch.randn(2, 4, 6)
    q, k, v = attn.qkv(x).split(6, dim=-1)
    heads = []
    for cols in (slice(0, 2), slice(2, 4), slice(4, 6)):
        scores = q[..., cols] @ k[..., cols].transpose(1, 2) / math.sqrt(2)
        scores = scores.masked_fill(torch.ones(4, 4, dtype=torch.bool).triu(1), float("-inf"))
        heads.append(scores.softmax(-1) @ v[..., cols])
    out = attn(x)
    torch.testing.assert_close(out, attn.out(torch.cat(heads, dim=-1)))
    changed = x.clone()
    changed[:, 3] += 1.0
    torch.testing.assert_close(attn(changed)[:, :3], out[:, :3])


@pytest.mark.exercise("GPTBlock.forward")
@pytest.mark.parametrize("norm_first", [False, True])
def test_gpt_block_formula(norm_first):
    torch.manual_seed(8)
    block = GPTBlock(8, 2, dropout=0.0, norm_first=norm_first).eval()
    x = torch.randn(2, 5, 8)
    if norm_first:
        y = x + block.attn(block.ln1(x))
        expected = y + block.mlp(block.ln2(y))
    else:
        y = block.ln1(x + block.attn(x))
        expected = block.ln2(y + block.mlp(y))
    torch.testing.assert_close(block(x), expected)


@pytest.mark.exercise("sample_next")
def test_top_1_is_the_argmax_at_any_temperature():
    logits = torch.tensor([[0.1, 2.0, -1.0, 1.9], [3.0, 0.0, 0.0, 2.9]])
    for temperature in (0.3, 1.0, 5.0):
        generator = torch.Generator().manual_seed(0)
        draws = sample_next(logits, temperature=temperature, top_k=1, generator=generator)
        assert draws.tolist() == [1, 0]


@pytest.mark.exercise("sample_next")
def test_top_k_never_draws_outside_and_temperature_flattens():
    logits = torch.tensor([[4.0, 3.0, 0.0, -2.0, 1.0]]).repeat(4000, 1)
    draws = sample_next(logits, top_k=2, generator=torch.Generator().manual_seed(1))
    assert set(draws.tolist()) == {0, 1}
    cold = sample_next(logits, temperature=0.5, top_k=2, generator=torch.Generator().manual_seed(2))
    hot = sample_next(logits, temperature=4.0, top_k=2, generator=torch.Generator().manual_seed(2))
    share = {t: float((d == 0).float().mean()) for t, d in (("cold", cold), ("hot", hot))}
    assert share["cold"] == pytest.approx(1 / (1 + math.exp(-2)), abs=0.03)
    assert share["hot"] == pytest.approx(1 / (1 + math.exp(-0.25)), abs=0.03)
