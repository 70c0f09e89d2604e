"""Assignment 03 models: shapes, causality (mandatory), attention against PyTorch's, embeddings."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.lm.models import (
    CausalSelfAttention,
    GPTBlock,
    LSTMLanguageModel,
    MiniGPT1,
    build_model,
    future_influence,
    logits_of,
)
from tests.lm.synthetic import MODELS

V = 50


def _tiny(name: str, num_layers: int = 2, **options) -> nn.Module:
    torch.manual_seed(0)
    defaults = dict(hidden=16) if name == "lstm" else dict(d_model=16, n_heads=2, max_len=12)
    return build_model(name, V, num_layers, dropout=0.0, **{**defaults, **options})


@pytest.mark.parametrize("name", MODELS)
def test_logits_have_shape_b_t_v(name):
    tokens = torch.randint(0, V, (3, 10))
    assert logits_of(_tiny(name)(tokens)).shape == (3, 10, V)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("t", [0, 4, 10])
def test_changing_future_tokens_leaves_past_logits_unchanged(name, t):
    tokens = torch.randint(0, V, (2, 12), generator=torch.Generator().manual_seed(1))
    past, future = future_influence(_tiny(name), tokens, t, V)
    assert past == 0.0
    assert future > 1e-4  # the check is not vacuous: later positions do see the change


@pytest.mark.exercise("GPTBlock.forward")
def test_the_causality_check_catches_a_leaking_model():
    """Without the mask, attention reads the future and the check reports it."""
    model = _tiny("gpt1")
    for block in model.blocks:
        block.attn.mask.fill_(True)
    past, _ = future_influence(model, torch.randint(0, V, (2, 12)), 4, V)
    assert past > 1e-4


def _attention() -> tuple[CausalSelfAttention, torch.Tensor]:
    torch.manual_seed(0)
    return CausalSelfAttention(16, 4, dropout=0.0, max_len=12).eval(), torch.randn(2, 9, 16)


@pytest.mark.exercise("CausalSelfAttention.attention_weights")
def test_attention_weights_are_causal_distributions():
    attn, x = _attention()
    weights, _ = attn.attention_weights(x)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 9))
    assert torch.all(weights.triu(diagonal=1) == 0)


@pytest.mark.exercise("CausalSelfAttention.forward")
def test_attention_matches_pytorch_causal_attention():
    attn, x = _attention()
    q, k, v = attn.qkv(x).view(2, 9, 3, 4, 4).permute(2, 0, 3, 1, 4)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(2, 9, 16)
    torch.testing.assert_close(attn(x), attn.out(expected), atol=1e-5, rtol=1e-5)


@pytest.mark.exercise("GPTBlock.forward")
@pytest.mark.parametrize("norm_first", [True, False])
def test_gpt_block_is_residual_attention_then_mlp(norm_first):
    torch.manual_seed(0)
    block = GPTBlock(16, 2, dropout=0.0, max_len=12, norm_first=norm_first).eval()
    x = torch.randn(2, 7, 16)
    if norm_first:
        h = x + block.attn(block.ln1(x))
        expected = h + block.mlp(block.ln2(h))
    else:
        h = block.ln1(x + block.attn(x))
        expected = block.ln2(h + block.mlp(h))
    torch.testing.assert_close(block(x), expected)


@pytest.mark.exercise("LSTMLanguageModel.forward")
def test_lstm_forward_returns_state_and_continues_from_it():
    model = _tiny("lstm", num_layers=2).eval()
    tokens = torch.randint(0, V, (2, 10))
    whole, _ = model(tokens)
    first, state = model(tokens[:, :6])
    rest, _ = model(tokens[:, 6:], state)
    assert state[0].shape == (2, 2, 16)
    torch.testing.assert_close(torch.cat([first, rest], 1), whole, atol=1e-5, rtol=1e-5)


def test_pretrained_rows_are_copied_and_projected_to_the_model_width():
    table = torch.randn(V, 8)
    gpt = MiniGPT1(V, 1, d_model=16, n_heads=2, max_len=12, pretrained=table)
    assert torch.equal(gpt.embed.table.weight.detach(), table)
    assert isinstance(gpt.embed.project, nn.Linear) and gpt.embed.project.out_features == 16
    lstm = LSTMLanguageModel(V, 1, hidden=16, pretrained=table)
    assert lstm.lstm.input_size == 8 and isinstance(lstm.embed.project, nn.Identity)
    with pytest.raises(ValueError, match="rows"):
        MiniGPT1(V + 1, 1, d_model=16, n_heads=2, pretrained=table)


@pytest.mark.parametrize("name", ["lstm", "gpt1"])
def test_tied_weights_share_the_embedding_table(name):
    width = {"emb_dim": 16} if name == "lstm" else {}  # table as wide as the model: no projections
    model, untied = _tiny(name, tie_weights=True, **width), _tiny(name, **width)
    assert model.head.decoder.weight is model.embed.table.weight
    saved = sum(p.numel() for p in untied.parameters()) - sum(p.numel() for p in model.parameters())
    assert saved == V * 16


def test_bad_arguments_name_the_valid_choices():
    with pytest.raises(ValueError, match=r"model='rnn'.*\['lstm', 'gpt1'\]"):
        build_model("rnn", V)
    with pytest.raises(ValueError, match="num_layers"):
        build_model("lstm", V, 0)
    with pytest.raises(ValueError, match="divisible"):
        CausalSelfAttention(10, 4)
    with pytest.raises(ValueError, match="max_len"):
        _tiny("gpt1")(torch.zeros(1, 13, dtype=torch.long))
