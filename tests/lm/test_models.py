"""Assignment 03 models: layer norm against PyTorch's, the GPT's input embeddings, attention (its qkv layout,
against PyTorch's), the blocks and the whole GPT, shapes, causality (mandatory), pretrained and tied
embeddings. The checks themselves are in ``tests/lm/checks.py``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.lm.models import (
    CausalSelfAttention,
    GPTBlock,
    LayerNorm,
    LSTMLanguageModel,
    MiniGPT1,
    TokenPositionEmbedding,
    build_model,
    future_influence,
    logits_of,
)
from tests.lm.checks import (
    check_attention_forward,
    check_attention_weights,
    check_gpt_block,
    check_gpt_forward,
    check_layer_norm,
    check_layer_norm_init,
    check_token_position_embedding,
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


@pytest.mark.exercise("MiniGPT1.forward")
def test_the_causality_check_catches_a_leaking_model():
    """Without the mask, attention reads the future and the check reports it."""
    model = _tiny("gpt1")
    for block in model.blocks:
        block.attn.mask.fill_(True)
    past, _ = future_influence(model, torch.randint(0, V, (2, 12)), 4, V)
    assert past > 1e-4


@pytest.mark.exercise("LayerNorm.__init__")
def test_layer_norm_has_a_gain_and_a_bias():
    check_layer_norm_init(LayerNorm)


@pytest.mark.exercise("LayerNorm.forward")
def test_layer_norm_matches_torch_in_values_and_gradients():
    check_layer_norm(LayerNorm)


@pytest.mark.exercise("LayerNorm.forward")
def test_layer_norm_normalizes_each_vector_at_the_default_eps():
    torch.manual_seed(0)
    x = torch.randn(4, 7, 32) * 3 + 2
    out = LayerNorm(32)(x)
    torch.testing.assert_close(out, nn.LayerNorm(32)(x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.mean(-1), torch.zeros(4, 7), atol=1e-5, rtol=0)


@pytest.mark.exercise("LayerNorm.__init__")
def test_the_gpt_uses_this_layer_norm():
    model = MiniGPT1(V, 2, d_model=16, n_heads=2, max_len=12, norm_first=True)
    norms = [m for m in model.modules() if isinstance(m, LayerNorm)]
    assert len(norms) == 5 and not any(isinstance(m, nn.LayerNorm) for m in model.modules())


@pytest.mark.exercise("TokenPositionEmbedding.forward")
def test_token_and_position_embeddings_are_added():
    check_token_position_embedding(TokenPositionEmbedding)


def _attention() -> tuple[CausalSelfAttention, torch.Tensor]:
    torch.manual_seed(0)
    return CausalSelfAttention(16, 4, dropout=0.0, max_len=12).eval(), torch.randn(2, 9, 16)


@pytest.mark.exercise("CausalSelfAttention.attention_weights")
def test_attention_weights_read_the_documented_qkv_layout():
    check_attention_weights(CausalSelfAttention)


@pytest.mark.exercise("CausalSelfAttention.forward")
def test_attention_forward_concatenates_the_heads_in_order():
    check_attention_forward(CausalSelfAttention)


@pytest.mark.exercise("CausalSelfAttention.attention_weights")
def test_attention_weights_are_causal_distributions():
    attn, x = _attention()
    weights, _ = attn.attention_weights(x)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 9))
    assert torch.all(weights.triu(diagonal=1) == 0)


@pytest.mark.exercise("CausalSelfAttention.forward")
def test_attention_matches_pytorch_causal_attention():
    attn, x = _attention()
    q, k, v = (z.view(2, 9, 4, 4).transpose(1, 2) for z in attn.qkv(x).split(16, dim=-1))  # the layout
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(2, 9, 16)
    torch.testing.assert_close(attn(x), attn.out(expected), atol=1e-5, rtol=1e-5)


@pytest.mark.exercise("GPTBlock.forward")
def test_gpt_block_post_norm_and_pre_norm():
    check_gpt_block(GPTBlock)


@pytest.mark.exercise("MiniGPT1.forward")
def test_gpt_is_embeddings_blocks_final_norm_and_head():
    check_gpt_forward(MiniGPT1)


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
    embed = TokenPositionEmbedding(V, 16, 12, pretrained=table)
    assert torch.equal(embed.tokens.table.weight.detach(), table)
    assert isinstance(embed.tokens.project, nn.Linear) and embed.tokens.project.out_features == 16
    lstm = LSTMLanguageModel(V, 1, hidden=16, pretrained=table)
    assert lstm.lstm.input_size == 8 and isinstance(lstm.embed.project, nn.Identity)
    with pytest.raises(ValueError, match="rows"):
        MiniGPT1(V + 1, 1, d_model=16, n_heads=2, pretrained=table)


GPT_BUILT = pytest.param("gpt1", marks=pytest.mark.exercise("LayerNorm.__init__"))
"""The GPT as a case of a test that only builds it (its layer norms need their ``__init__``)."""


@pytest.mark.parametrize("name", ["lstm", GPT_BUILT])
def test_tied_weights_share_the_embedding_table(name):
    width = {"emb_dim": 16} if name == "lstm" else {}  # table as wide as the model: no projections
    model, untied = _tiny(name, tie_weights=True, **width), _tiny(name, **width)
    table = model.embed.table if name == "lstm" else model.embed.tokens.table
    assert model.head.decoder.weight is table.weight
    saved = sum(p.numel() for p in untied.parameters()) - sum(p.numel() for p in model.parameters())
    assert saved == V * 16


def test_bad_arguments_name_the_valid_choices():
    with pytest.raises(ValueError, match=r"model='rnn'.*\['lstm', 'gpt1'\]"):
        build_model("rnn", V)
    with pytest.raises(ValueError, match="num_layers"):
        build_model("lstm", V, 0)
    with pytest.raises(ValueError, match="divisible"):
        CausalSelfAttention(10, 4)


@pytest.mark.exercise("LayerNorm.__init__")
def test_a_sequence_longer_than_max_len_is_refused():
    with pytest.raises(ValueError, match="max_len"):
        _tiny("gpt1")(torch.zeros(1, 13, dtype=torch.long))
