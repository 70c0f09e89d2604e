"""Hidden tests of assignment 03's exercises, on other inputs than the public tests, against values computed
here (by hand, in float64, or with PyTorch's own layers). Each calls only the exercise it grades: where
an exercise calls another one (a block its layer norms and attention, the evaluation the loss), the other
is replaced by a reference for the test, so that one wrong exercise does not cost another's points."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.lm import data, models, sampling, train
from course_lib.lm.data import Vocabulary
from course_lib.lm.models import CausalSelfAttention, GPTBlock, MiniGPT1
from course_lib.lm.sampling import generate, sample_next
from course_lib.lm.train import CarriedState, evaluate_loss, next_token_loss, perplexity, unigram_perplexity


def _reference_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))


def _reference_attention(attn: CausalSelfAttention, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    b, t, d = x.shape
    q, k, v = (z.view(b, t, attn.n_heads, -1).transpose(1, 2) for z in attn.qkv(x).split(d, dim=-1))
    scores = (q @ k.transpose(-2, -1) / math.sqrt(d // attn.n_heads)).masked_fill(
        torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
    return scores.softmax(-1), v


# ------------------------------------------------------------------------------------------- perplexity
@pytest.mark.exercise("perplexity")
@pytest.mark.parametrize("loss", [0.0, 1.5, math.log(250.0)])
def test_perplexity_values(loss):
    assert perplexity(loss) == pytest.approx(math.exp(loss), rel=1e-12)


@pytest.mark.exercise("perplexity")
def test_perplexity_overflows_to_inf():
    assert perplexity(1e4) == math.inf


# ------------------------------------------------------------------------------------------- windows
class _Windows(data.NextTokenWindows):
    """The reference windows, for the tests of the exercises that read them."""

    def __getitem__(self, i):
        t = self.seq_len
        return self.ids[i * t:(i + 1) * t], self.ids[i * t + 1:(i + 1) * t + 1]


@pytest.mark.exercise("NextTokenWindows.__getitem__")
@pytest.mark.parametrize(("n", "seq_len"), [(23, 5), (9, 1), (12, 11)])
def test_windows_by_hand(n, seq_len):
    ids = torch.randint(0, 1000, (n,), generator=torch.Generator().manual_seed(n))
    windows = data.NextTokenWindows(ids, seq_len)
    for i in range(len(windows)):
        x, y = windows[i]
        assert x.tolist() == ids.tolist()[i * seq_len:(i + 1) * seq_len]
        assert y.tolist() == ids.tolist()[i * seq_len + 1:(i + 1) * seq_len + 1]
        assert x.dtype == y.dtype == torch.int64


# ------------------------------------------------------------------------------------------------ loss
@pytest.mark.exercise("next_token_loss")
def test_next_token_loss_in_float64_by_hand():
    g = torch.Generator().manual_seed(11)
    logits = torch.randn(3, 5, 11, generator=g, dtype=torch.float64) * 3 - 1
    targets = torch.randint(0, 11, (3, 5), generator=g)
    rows = logits.tolist()
    expected = sum(-math.log(math.exp(rows[b][t][targets[b, t]]) / sum(math.exp(z) for z in rows[b][t]))
                   for b in range(3) for t in range(5)) / 15
    got = next_token_loss(logits, targets)
    assert got.dtype == torch.float32 and got.shape == ()
    assert float(got) == pytest.approx(float(expected), rel=1e-5)


@pytest.mark.exercise("next_token_loss")
def test_next_token_loss_is_stable_for_large_logits():
    """Logits of hundreds: a softmax followed by a log underflows to log(0); log_softmax does not."""
    logits = torch.tensor([[[400.0, 0.0, -400.0], [0.0, 300.0, 0.0]]])
    targets = torch.tensor([[2, 0]])
    assert float(next_token_loss(logits, targets)) == pytest.approx((800.0 + 300.0) / 2, rel=1e-5)


@pytest.mark.exercise("next_token_loss")
def test_next_token_loss_gradient_is_softmax_minus_one_hot_over_n():
    g = torch.Generator().manual_seed(12)
    logits = torch.randn(1, 6, 4, generator=g).requires_grad_(True)
    targets = torch.randint(0, 4, (1, 6), generator=g)
    next_token_loss(logits, targets).backward()
    expected = (logits.detach().softmax(-1) - F.one_hot(targets, 4).float()) / 6
    torch.testing.assert_close(logits.grad, expected, atol=1e-6, rtol=1e-5)


# ---------------------------------------------------------------------------------------- layer norm
@pytest.mark.exercise("LayerNorm.__init__")
def test_layer_norm_init_registers_exactly_a_gain_and_a_bias():
    ln = models.LayerNorm(5, eps=1e-6)
    params = dict(ln.named_parameters())
    assert sorted(params) == ["bias", "weight"] and ln.eps == 1e-6
    assert torch.equal(params["weight"].detach(), torch.ones(5))
    assert torch.equal(params["bias"].detach(), torch.zeros(5))
    assert models.LayerNorm(3).eps == 1e-5
    assert sorted(models.LayerNorm(3).state_dict()) == sorted(nn.LayerNorm(3).state_dict())


def _layer_norm_without_init(dim: int, eps: float) -> tuple[models.LayerNorm, nn.LayerNorm]:
    """The exercise's LayerNorm with its parameters set here (not by its ``__init__``), and the reference
    with the same random gain and bias."""
    ours = models.LayerNorm.__new__(models.LayerNorm)
    nn.Module.__init__(ours)
    ref = nn.LayerNorm(dim, eps=eps)
    g = torch.Generator().manual_seed(13)
    with torch.no_grad():
        ref.weight.copy_(torch.rand(dim, generator=g) + 0.5)
        ref.bias.copy_(torch.randn(dim, generator=g))
    ours.eps = eps
    ours.weight = nn.Parameter(ref.weight.detach().clone())
    ours.bias = nn.Parameter(ref.bias.detach().clone())
    return ours, ref


@pytest.mark.exercise("LayerNorm.forward")
@pytest.mark.parametrize(("shape", "eps"), [((7, 3), 1e-5), ((2, 3, 4, 5), 1e-2), ((1, 9, 2), 0.5)])
def test_layer_norm_forward_and_gradients_match_torch(shape, eps):
    ours, ref = _layer_norm_without_init(shape[-1], eps)
    x = (torch.randn(*shape, generator=torch.Generator().manual_seed(14)) * 5 + 3).requires_grad_(True)
    got, expected = ours(x), ref(x)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    upstream = torch.randn(shape, generator=torch.Generator().manual_seed(15))
    mine = torch.autograd.grad(got, (x, ours.weight, ours.bias), upstream)
    theirs = torch.autograd.grad(expected, (x, ref.weight, ref.bias), upstream)
    for a, b in zip(mine, theirs, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


# ----------------------------------------------------------------------------------------- embeddings
@pytest.mark.exercise("TokenPositionEmbedding.forward")
def test_embedding_at_the_full_length_by_hand():
    torch.manual_seed(16)
    emb = models.TokenPositionEmbedding(13, 4, 7, dropout=0.0, table_dim=3)
    tokens = torch.randint(0, 13, (3, 7))
    with torch.no_grad():
        expected = emb.tokens.project(emb.tokens.table.weight[tokens]) + emb.positions.weight
        torch.testing.assert_close(emb(tokens), expected)
        torch.testing.assert_close(emb(tokens[:, :2]), expected[:, :2])


@pytest.mark.exercise("TokenPositionEmbedding.forward")
def test_embedding_dropout_acts_once_on_the_sum_in_training_only():
    torch.manual_seed(17)
    emb = models.TokenPositionEmbedding(9, 16, 6, dropout=0.25)
    tokens = torch.randint(0, 9, (4, 6))
    with torch.no_grad():
        clean = emb.tokens(tokens) + emb.positions.weight
        out = emb.train()(tokens)
        kept = torch.isclose(out, clean / 0.75, atol=1e-6)
        assert torch.all(kept | (out == 0)) and 0.6 < kept.float().mean() < 0.9
        torch.testing.assert_close(emb.eval()(tokens), clean)


# ------------------------------------------------------------------------------------------ attention
@pytest.mark.exercise("CausalSelfAttention.attention_weights")
@pytest.mark.parametrize(("d", "heads", "t"), [(8, 2, 5), (9, 3, 7)])
def test_attention_weights_by_hand(d, heads, t):
    torch.manual_seed(6)
    attn = CausalSelfAttention(d, heads, dropout=0.5, max_len=7).eval()
    x = torch.randn(2, t, d) - 0.5
    weights, values = attn.attention_weights(x)
    q, k, v = attn.qkv(x).split(d, dim=-1)
    w = d // heads
    for h in range(heads):
        cols = slice(h * w, (h + 1) * w)
        scores = q[..., cols] @ k[..., cols].transpose(1, 2) / math.sqrt(w)
        scores = scores.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
        torch.testing.assert_close(weights[:, h], scores.softmax(-1))
        torch.testing.assert_close(values[:, h], v[..., cols])


@pytest.mark.exercise("CausalSelfAttention.forward")
def test_attention_forward_by_hand_and_causal():
    torch.manual_seed(7)
    attn = CausalSelfAttention(6, 3, dropout=0.0).eval()
    attn.attention_weights = lambda x: _reference_attention(attn, x)  # type: ignore[method-assign]
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


@pytest.mark.exercise("CausalSelfAttention.forward")
def test_attention_forward_drops_the_weights_in_training():
    torch.manual_seed(8)
    attn = CausalSelfAttention(4, 2, dropout=0.5).train()
    attn.attention_weights = lambda x: _reference_attention(attn, x)  # type: ignore[method-assign]
    x = torch.randn(1, 5, 4)
    with torch.no_grad():
        runs = torch.stack([attn(x) for _ in range(2)])
        clean = attn.eval()(x)
    assert not torch.allclose(runs[0], runs[1]) and not torch.allclose(runs[0], clean)


# ------------------------------------------------------------------------------------ blocks and GPT
class _Mix(nn.Module):
    """A stand-in for attention: each position sees the mean of the positions up to it, then a linear map."""

    def __init__(self, d: int):
        super().__init__()
        self.linear = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        causal_mean = torch.tril(torch.ones(t, t)) / torch.arange(1, t + 1).unsqueeze(1)
        return self.linear(causal_mean @ x)


@pytest.mark.exercise("GPTBlock.forward")
@pytest.mark.parametrize("norm_first", [False, True])
def test_gpt_block_formula(norm_first, monkeypatch):
    monkeypatch.setattr(models, "LayerNorm", nn.LayerNorm)  # the block's wiring only
    torch.manual_seed(8)
    block = GPTBlock(8, 2, dropout=0.0, norm_first=norm_first).eval()
    block.attn = _Mix(8)
    with torch.no_grad():
        for ln in (block.ln1, block.ln2):
            ln.weight.uniform_(0.5, 1.5)
            ln.bias.normal_()
    x = torch.randn(2, 5, 8) * 2
    if norm_first:
        y = x + block.attn(block.ln1(x))
        expected = y + block.mlp(block.ln2(y))
    else:
        y = block.ln1(x + block.attn(x))
        expected = block.ln2(y + block.mlp(y))
    torch.testing.assert_close(block(x), expected)


@pytest.mark.exercise("MiniGPT1.forward")
def test_gpt_forward_composes_its_parts_in_order(monkeypatch):
    monkeypatch.setattr(models, "LayerNorm", nn.LayerNorm)
    torch.manual_seed(18)
    model = MiniGPT1(10, 3, d_model=6, n_heads=2, max_len=5, norm_first=True).eval()
    model.embed = nn.Embedding(10, 6)  # stand-ins: the test grades the wiring, not the parts
    model.blocks = nn.ModuleList(nn.Sequential(nn.Linear(6, 6), nn.Tanh()) for _ in range(3))
    with torch.no_grad():
        model.ln_f.bias.normal_()
    tokens = torch.randint(0, 10, (2, 5))
    x = model.embed(tokens)
    for block in model.blocks:
        x = block(x)
    torch.testing.assert_close(model(tokens), model.head(model.ln_f(x)))


# -------------------------------------------------------------------------------------------- training
@pytest.mark.exercise("unigram_perplexity")
def test_unigram_perplexity_by_hand_with_unseen_words():
    train_ids, eval_ids = torch.tensor([4, 4, 4, 1, 0, 1]), torch.tensor([4, 2, 3, 1, 4])
    counts = [1 + 1, 2 + 1, 0 + 1, 0 + 1, 3 + 1]  # + 1 for each of the 5 words, over 6 + 5
    expected = math.exp(-sum(math.log(counts[i] / 11) for i in (4, 2, 3, 1, 4)) / 5)
    assert unigram_perplexity(train_ids, eval_ids, 5) == pytest.approx(expected, rel=1e-9)


class _Bigram(nn.Module):
    def __init__(self, vocab: int):
        super().__init__()
        self.table = nn.Embedding(vocab, vocab)
        self.drop = nn.Dropout(0.3)

    def forward(self, tokens):
        return self.drop(self.table(tokens))


@pytest.mark.exercise("evaluate_loss")
def test_evaluate_loss_weights_every_token_once(monkeypatch):
    monkeypatch.setattr(train, "next_token_loss", _reference_loss)
    monkeypatch.setattr(train, "NextTokenWindows", _Windows)
    torch.manual_seed(19)
    model = _Bigram(6)
    ids = torch.randint(0, 6, (7 * 3 + 2,), generator=torch.Generator().manual_seed(20))
    with torch.no_grad():
        model.eval()
        expected = _reference_loss(model(ids[:21].view(7, 3)), ids[1:22].view(7, 3)).item()
        model.train()
    got = evaluate_loss(model, ids, seq_len=3, batch_size=3, device="cpu")  # batches of 3, 3 and 1 windows
    assert got == pytest.approx(expected, rel=1e-5)
    assert model.training


class _Recurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed, self.rnn, self.head = nn.Embedding(5, 3), nn.GRU(3, 4, batch_first=True), nn.Linear(4, 5)

    def forward(self, tokens, state=None):
        out, h = self.rnn(self.embed(tokens), None if state is None else state[0])
        return self.head(out), (h,)


@pytest.mark.exercise("CarriedState.__call__")
def test_carried_state_reads_three_chunks_like_one_pass(monkeypatch):
    monkeypatch.setattr(train, "next_token_loss", _reference_loss)
    torch.manual_seed(21)
    model = _Recurrent()
    ids = torch.randint(0, 5, (3, 10), generator=torch.Generator().manual_seed(22))
    x, y = ids[:, :9], ids[:, 1:]
    with torch.no_grad():
        whole, _ = model(x)
    carried = CarriedState()
    for i, cut in enumerate((slice(0, 4), slice(4, 8), slice(8, 9))):
        loss, count = carried(model, (x[:, cut], y[:, cut], i == 0))
        assert loss.requires_grad
        assert count == 3 * (cut.stop - cut.start)
        assert loss.item() == pytest.approx(_reference_loss(whole[:, cut], y[:, cut]).item(), rel=1e-5)
        assert all(not t.requires_grad for t in carried.state)
    loss, _ = carried(model, (x[:, :4], y[:, :4], True))
    assert loss.item() == pytest.approx(_reference_loss(whole[:, :4], y[:, :4]).item(), rel=1e-5)


# -------------------------------------------------------------------------------------------- sampling
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


class _Doubler(nn.Module):
    """After the window's last token i it predicts 2i mod V; it refuses windows longer than ``max_len``."""

    max_len = 3

    def __init__(self, vocab: int):
        super().__init__()
        self.vocab = vocab
        self.bias = nn.Parameter(torch.zeros(vocab))

    def forward(self, tokens):
        assert tokens.shape[1] <= self.max_len, f"a window of {tokens.shape[1]} > max_len {self.max_len}"
        return F.one_hot(tokens * 2 % self.vocab, self.vocab).float() * 50 + self.bias


@pytest.mark.exercise("generate")
def test_generate_feeds_back_each_prediction(monkeypatch):
    monkeypatch.setattr(sampling, "sample_next", lambda logits, **_: logits.argmax(-1))
    vocab = Vocabulary(tuple(f"v{i}" for i in range(10)) + ("<unk>",))
    model = _Doubler(len(vocab))
    # 1 -> 2 -> 4 -> 8 -> 16 mod 11 = 5 -> 10 -> 20 mod 11 = 9
    assert generate(model, vocab, "v3 v1", max_tokens=6) == "v3 v1 v2 v4 v8 v5 <unk> v9"
    assert generate(model, vocab, "v7", max_tokens=1, context=2) == "v7 v3"
