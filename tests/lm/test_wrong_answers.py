"""The exercise checks of assignment 03 (``tests/lm/checks.py``) reject wrong but runnable answers, each
with a message that names what was expected and, where it can tell, the mistake: the wrong answers
are written here, as a student might write them.

These tests check the checks, not the library: every exercise a wrong answer leans on (a block's layer
norms and attention, the loss inside an evaluation loop) is replaced here by a reference written in this
file, so that they pass the same with the exercises written or not."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.lm import data, models, sampling, train
from course_lib.lm.data import Vocabulary
from tests.lm import checks


def assert_check_fails(check: Callable[..., None], wrong, *args, match: str) -> None:
    """``check(wrong, *args)`` raises an ``AssertionError`` whose message matches ``match`` (a regex)."""
    with pytest.raises(AssertionError) as caught:
        check(wrong, *args)
    message = str(caught.value)
    assert re.search(match, message), f"the message does not say {match!r}:\n{message}"
    assert "expected" in message, message


def _reference_window(self, i):
    start, end = i * self.seq_len, (i + 1) * self.seq_len
    return self.ids[start:end], self.ids[start + 1:end + 1]


def _reference_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1))


def _reference_embedding(self, tokens):
    return self.drop(self.tokens(tokens) + self.positions(torch.arange(tokens.shape[1])))


def _reference_attention(self, x):
    weights, values = checks.attention_reference(self, x)
    return self.out((self.attn_drop(weights) @ values).transpose(1, 2).reshape(x.shape))


def _reference_block(self, x):
    if self.norm_first:
        x = x + self.drop(self.attn(self.ln1(x)))
        return x + self.drop(self.mlp(self.ln2(x)))
    x = self.ln1(x + self.drop(self.attn(x)))
    return self.ln2(x + self.drop(self.mlp(x)))


def _reference_gpt(self, tokens):
    x = self.embed(tokens)
    for block in self.blocks:
        x = block(x)
    return self.head(self.ln_f(x))


def _reference_sample(logits, *, generator=None, **_):
    return torch.multinomial(logits.float().softmax(-1), 1, generator=generator).squeeze(-1)


@pytest.fixture(autouse=True)
def references(monkeypatch):
    """Every exercise replaced by a reference (PyTorch's layer norm, the rest written above)."""
    monkeypatch.setattr(data.NextTokenWindows, "__getitem__", _reference_window)
    monkeypatch.setattr(models, "LayerNorm", nn.LayerNorm)
    monkeypatch.setattr(models.TokenPositionEmbedding, "forward", _reference_embedding)
    monkeypatch.setattr(models.CausalSelfAttention, "attention_weights", checks.attention_reference)
    monkeypatch.setattr(models.CausalSelfAttention, "forward", _reference_attention)
    monkeypatch.setattr(models.GPTBlock, "forward", _reference_block)
    monkeypatch.setattr(models.MiniGPT1, "forward", _reference_gpt)
    monkeypatch.setattr(train, "next_token_loss", _reference_loss)
    monkeypatch.setattr(sampling, "sample_next", _reference_sample)


def test_the_checks_pass_correct_answers():
    """The references above (and nn.LayerNorm itself) pass every check: the checks ask nothing more than
    the contracts the docstrings state."""
    checks.check_next_token_windows(data.NextTokenWindows)
    checks.check_next_token_loss(_reference_loss)
    checks.check_layer_norm_init(nn.LayerNorm)
    checks.check_layer_norm(nn.LayerNorm)
    checks.check_token_position_embedding(models.TokenPositionEmbedding)
    checks.check_attention_weights(models.CausalSelfAttention)
    checks.check_attention_forward(models.CausalSelfAttention)
    checks.check_gpt_block(models.GPTBlock)
    checks.check_gpt_forward(models.MiniGPT1)


# ------------------------------------------------------------------------------------------ the windows
def _windows(getitem) -> type:
    return type("WrongWindows", (data.NextTokenWindows,), {"__getitem__": getitem})


@pytest.mark.parametrize(("getitem", "match"), [
    (lambda self, i: (self.ids[i:i + self.seq_len], self.ids[i + 1:i + self.seq_len + 1]),
     r"windows that overlap"),
    (lambda self, i: (self.ids[i * (self.seq_len + 1):i * (self.seq_len + 1) + self.seq_len],
                      self.ids[i * (self.seq_len + 1) + 1:(i + 1) * (self.seq_len + 1)]), r"side by side"),
    (lambda self, i: (self.ids[i * self.seq_len:(i + 1) * self.seq_len],) * 2, r"the inputs themselves"),
    (lambda self, i: _reference_window(self, i)[::-1], r"inputs and targets swapped"),
    (lambda self, i: tuple(t.float() for t in _reference_window(self, i)), r"expected dtype torch\.int64"),
    (lambda self, i: (self.ids[i * self.seq_len:(i + 1) * self.seq_len + 1], self.ids[i * self.seq_len + 1:
                                                                               (i + 1) * self.seq_len + 1]),
     r"expected shape \(4,\), got \(5,\)"),
], ids=["overlapping", "side-by-side", "not-shifted", "swapped", "float", "t-plus-one-inputs"])
def test_wrong_windows_fail(getitem, match):
    assert_check_fails(checks.check_next_token_windows, _windows(getitem), match=match)


# --------------------------------------------------------------------------------------------- the loss
def _per_position(logits, targets):
    return -logits.float().log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)


@pytest.mark.parametrize(("wrong", "match"), [
    (lambda logits, targets: _per_position(logits, targets).sum(), r"the sum over the positions"),
    (lambda logits, targets: _per_position(logits, targets).sum(1).mean(), r"averaged over the B windows"),
    (lambda logits, targets: _per_position(logits[:, :-1], targets[:, 1:]).mean(), r"do not shift again"),
    (lambda logits, targets: -logits.float().softmax(-1).gather(-1, targets.unsqueeze(-1)).mean(),
     r"the probability instead"),
    (lambda logits, targets: torch.zeros(()), r"expected 3\.322426, got 0\.000000"),
    (lambda logits, targets: torch.tensor(_per_position(logits, targets).mean().item()),
     r"carries the gradient"),
    (lambda logits, targets: _per_position(logits, targets), r"expected shape \(\)"),
    (lambda logits, targets: F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)),
     r"expected a float32 loss"),  # right in float32, but a bfloat16 loss for bfloat16 logits
], ids=["sum", "sum-per-window", "shifted-again", "probability", "zeros", "detached", "per-position", "bf16"])
def test_wrong_losses_fail(wrong, match):
    assert_check_fails(checks.check_next_token_loss, wrong, match=match)


# ----------------------------------------------------------------------------------------- layer norm
class _Norm(nn.Module):
    """A layer norm whose normalization (x, eps) -> x_hat is given; gain and bias as the exercise's."""

    normalize: Callable[[torch.Tensor, float], torch.Tensor] = staticmethod(lambda x, eps: x)

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        return type(self).normalize(x, self.eps) * self.weight + self.bias


def _norm(normalize) -> type[nn.Module]:
    return type("WrongNorm", (_Norm,), {"normalize": staticmethod(normalize)})


def _standardize(x, eps, dims=-1, unbiased=False):
    return (x - x.mean(dims, keepdim=True)) / torch.sqrt(x.var(dims, keepdim=True, unbiased=unbiased) + eps)


@pytest.mark.parametrize(("wrong", "match"), [
    (_norm(lambda x, eps: _standardize(x, eps, unbiased=True)), r"the unbiased variance \(divided by D - 1"),
    (_norm(lambda x, eps: _standardize(x, eps, dims=0)), r"over dimension 0 \(the batch\)"),
    (_norm(lambda x, eps: _standardize(x, eps, dims=1)), r"over dimension 1 \(the positions\)"),
    (_norm(lambda x, eps: _standardize(x, eps, dims=(0, 1, 2))), r"over all dimensions at once"),
    (_norm(lambda x, eps: (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True, unbiased=False) + eps)),
     r"eps added to the standard deviation"),
    (_norm(lambda x, eps: _standardize(x, 0.0)), r"leaving out eps"),
    (_norm(lambda x, eps: (x - x.mean(-1, keepdim=True).detach())
           / torch.sqrt(x.var(-1, keepdim=True, unbiased=False).detach() + eps)),
     r"gradient of LayerNorm w\.r\.t\. the input"),  # right values, the statistics cut off from the gradient
    (_norm(lambda x, eps: x - x.mean(-1, keepdim=True)), r"expected \[.*\] \(shape \(3, 4, 6\)\)"),
], ids=["unbiased", "batch-axis", "position-axis", "all-axes", "eps-outside", "no-eps", "detached",
        "no-scale"])
def test_wrong_layer_norms_fail(wrong, match):
    assert_check_fails(checks.check_layer_norm, wrong, match=match)


class _NoAffine(_Norm):
    def forward(self, x):
        return _standardize(x, self.eps)


class _Buffers(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight, self.bias = torch.ones(dim), torch.zeros(dim)  # plain tensors: never trained


class _RandomGain(_Norm):
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__(dim, eps)
        self.weight = nn.Parameter(torch.randn(dim))


class _NoEps(_Norm):
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__(dim, 1e-5)


def test_wrong_layer_norm_parameters_fail():
    assert_check_fails(checks.check_layer_norm, _NoAffine, match=r"leaving out the gain and the bias")
    assert_check_fails(checks.check_layer_norm_init, _Buffers,
                       match=r"nn\.Parameters named 'weight' and 'bias'")
    assert_check_fails(checks.check_layer_norm_init, _RandomGain, match=r"initially ones")
    assert_check_fails(checks.check_layer_norm_init, _NoEps, match=r"eps: expected 0\.001, got 1e-05")


# ------------------------------------------------------------------------------------------ embeddings
def _embedding(forward) -> type[nn.Module]:
    return type("WrongEmbedding", (models.TokenPositionEmbedding,), {"forward": forward})


@pytest.mark.parametrize(("forward", "match"), [
    (lambda self, tokens: self.drop(self.tokens(tokens)), r"leaving out the position vectors"),
    (lambda self, tokens: self.drop(self.tokens(tokens) + self.positions(
        torch.arange(1, tokens.shape[1] + 1))), r"positions counted from 1"),
    (lambda self, tokens: self.drop(self.tokens(tokens) + self.positions(
        torch.arange(tokens.shape[0])).unsqueeze(1)), r"position vectors of the batch rows"),
    (lambda self, tokens: self.drop(self.tokens(tokens)) + self.positions(torch.arange(tokens.shape[1])),
     r"self\.drop applied once, to the sum"),
    (lambda self, tokens: self.tokens(tokens) + self.positions(torch.arange(tokens.shape[1])),
     r"with dropout 0\.5 in training mode: expected every value 0 or"),
], ids=["no-positions", "from-1", "batch-positions", "dropout-on-tokens-only", "no-dropout"])
def test_wrong_embeddings_fail(forward, match):
    assert_check_fails(checks.check_token_position_embedding, _embedding(forward), match=match)


# ------------------------------------------------------------------------------------------- attention
def _attention(split) -> type[nn.Module]:
    """An attention whose ``attention_weights`` reads q, k, v with ``split(self, qkv) -> (q, k, v)``, each
    (B, H, T, d_h), then scales, masks and normalizes correctly."""

    def attention_weights(self, x):
        t = x.shape[1]
        q, k, v = split(self, self.qkv(x))
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        return scores.masked_fill(~self.mask[:t, :t], float("-inf")).softmax(-1), v

    return type("WrongAttention", (models.CausalSelfAttention,), {"attention_weights": attention_weights})


def _documented(self, qkv):
    d = qkv.shape[-1] // 3
    return tuple(z.view(*z.shape[:2], self.n_heads, -1).transpose(1, 2) for z in qkv.split(d, -1))


def _per_head(self, qkv):
    b, t, _ = qkv.shape
    return tuple(qkv.view(b, t, self.n_heads, 3, -1).permute(3, 0, 2, 1, 4))


def _no_mask(self, x):
    q, k, v = _documented(self, self.qkv(x))
    return (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(-1), v


def _unscaled(self, x):
    t = x.shape[1]
    q, k, v = _documented(self, self.qkv(x))
    return (q @ k.transpose(-2, -1)).masked_fill(~self.mask[:t, :t], float("-inf")).softmax(-1), v


@pytest.mark.parametrize(("wrong", "match"), [
    (_attention(lambda self, qkv: (lambda q, k, v: (k, q, v))(*_documented(self, qkv))), r"q and k swapped"),
    (_attention(lambda self, qkv: (lambda q, k, v: (q, v, k))(*_documented(self, qkv))), r"k and v swapped"),
    (_attention(lambda self, qkv: (lambda q, k, v: (v, k, q))(*_documented(self, qkv))), r"q and v swapped"),
    (_attention(_per_head), r"reading q, k, v per head \(qkv\.view\(B, T, H, 3, d_h\)\)"),
    (type("NoMask", (models.CausalSelfAttention,), {"attention_weights": _no_mask}),
     r"expected 0 \(the causal mask"),
    (type("Unscaled", (models.CausalSelfAttention,), {"attention_weights": _unscaled}),
     r"scores not divided by sqrt\(d_h\)"),
], ids=["q-k-swapped", "k-v-swapped", "q-v-swapped", "per-head-layout", "no-mask", "unscaled"])
def test_wrong_attention_weights_fail_and_name_the_layout(wrong, match):
    assert_check_fails(checks.check_attention_weights, wrong, match=match)
    if "mask" not in match:
        assert_check_fails(checks.check_attention_weights, wrong, match=re.escape(checks.LAYOUT))


def _attention_forward(combine) -> type[nn.Module]:
    def forward(self, x):
        weights, v = self.attention_weights(x)
        return combine(self, weights @ v)

    return type("WrongForward", (models.CausalSelfAttention,), {"forward": forward})


@pytest.mark.parametrize(("combine", "match"), [
    (lambda self, heads: self.out(heads.flip(1).transpose(1, 2).reshape(*heads.shape[::2][:1], -1,
                                                                       self.out.in_features)),
     r"heads concatenated in reverse order"),
    (lambda self, heads: self.out(heads.reshape(heads.shape[0], -1, self.out.in_features)),
     r"without first moving H next to d_h"),
    (lambda self, heads: heads.transpose(1, 2).reshape(heads.shape[0], -1, self.out.in_features),
     r"leaving out self\.out"),
], ids=["reversed-heads", "no-transpose", "no-projection"])
def test_wrong_attention_forwards_fail(combine, match):
    assert_check_fails(checks.check_attention_forward, _attention_forward(combine), match=match)


# ------------------------------------------------------------------------------------ blocks and GPT
def test_a_block_in_the_other_norm_order_fails():
    def swapped(self, x):
        if not self.norm_first:
            x = x + self.attn(self.ln1(x))
            return x + self.mlp(self.ln2(x))
        x = self.ln1(x + self.attn(x))
        return self.ln2(x + self.mlp(x))

    wrong = type("Swapped", (models.GPTBlock,), {"forward": swapped})
    assert_check_fails(checks.check_gpt_block, wrong, match=r"the other order of layer norm and residual")


def test_a_gpt_without_its_final_norm_fails():
    def forward(self, tokens):
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x)
        return self.head(x)

    wrong = type("NoFinalNorm", (models.MiniGPT1,), {"forward": forward})
    assert_check_fails(checks.check_gpt_forward, wrong, match=r"leaving out ln_f")


# ----------------------------------------------------------------------------------- evaluation loops
@torch.no_grad()
def _mean_of_batch_means(model, ids, *, seq_len, batch_size=64, device="cpu"):
    model.eval()
    windows = train.NextTokenWindows(ids, seq_len)
    means = [float(train.next_token_loss(model(x), y))
             for x, y in torch.utils.data.DataLoader(windows, batch_size=batch_size)]
    model.train()
    return sum(means) / len(means)


@torch.no_grad()
def _dropout_on(model, ids, *, seq_len, batch_size=64, device="cpu"):
    x, y = ids[: (len(ids) - 1) // seq_len * seq_len], ids[1: (len(ids) - 1) // seq_len * seq_len + 1]
    return float(train.next_token_loss(model(x.view(-1, seq_len)), y.view(-1, seq_len)))


@torch.no_grad()
def _left_in_eval(model, ids, *, seq_len, batch_size=64, device="cpu"):
    model.eval()
    x, y = ids[: (len(ids) - 1) // seq_len * seq_len], ids[1: (len(ids) - 1) // seq_len * seq_len + 1]
    return float(train.next_token_loss(model(x.view(-1, seq_len)), y.view(-1, seq_len)))


@pytest.mark.parametrize(("wrong", "match"), [
    (_mean_of_batch_means, r"mean of the 3 batch means"),
    (_dropout_on, r"in eval mode: dropout off"),
    (_left_in_eval, r"back in training mode"),
], ids=["batch-means", "dropout-on", "mode-not-restored"])
def test_wrong_evaluations_fail(wrong, match):
    assert_check_fails(checks.check_evaluate_loss, wrong, match=match)


class _FromZeros(train.CarriedState):
    def __call__(self, model, batch):
        x, y, _ = batch
        logits, state = model(x)
        self.state = tuple(t.detach() for t in state)
        return train.next_token_loss(logits, y), y.numel()


class _NotDetached(train.CarriedState):
    def __call__(self, model, batch):
        x, y, first = batch
        logits, self.state = model(x, None if first else self.state)
        return train.next_token_loss(logits, y), y.numel()


class _NeverReset(train.CarriedState):
    def __call__(self, model, batch):
        x, y, _ = batch
        logits, state = model(x, self.state)
        self.state = tuple(t.detach() for t in state)
        return train.next_token_loss(logits, y), y.numel()


@pytest.mark.parametrize(("wrong", "match"), [
    (_FromZeros, r"starting the chunk from zeros"),
    (_NotDetached, r"still require grad"),
    (_NeverReset, r"carrying the state into a chunk marked first"),
], ids=["from-zeros", "not-detached", "never-reset"])
def test_wrong_carried_states_fail(wrong, match):
    assert_check_fails(checks.check_carried_state, wrong, match=match)


def test_a_unigram_model_without_smoothing_fails():
    def unsmoothed(train_ids, eval_ids, vocab_size):
        p = torch.bincount(train_ids, minlength=vocab_size).double()
        return math.exp(-float((p / p.sum()).log()[eval_ids].mean()))

    assert_check_fails(checks.check_unigram_perplexity, unsmoothed,
                       match=r"expected 4\.\d+ \(p = \(count \+ 1\)")


def test_generation_from_the_first_position_fails():
    def from_first(model, vocab, prompt, *, max_tokens, seed=0, **_):
        ids = torch.as_tensor(vocab.encode(prompt.split())).unsqueeze(0)
        generator = torch.Generator().manual_seed(seed)
        for _ in range(max_tokens):
            logits = model(ids[:, -model.max_len:])[:, 0]
            ids = torch.cat([ids, sampling.sample_next(logits, generator=generator).unsqueeze(0)], dim=1)
        return " ".join(vocab.decode(ids[0].tolist()))

    vocab = Vocabulary(tuple(f"w{i}" for i in range(9)) + ("<unk>",))
    assert_check_fails(checks.check_generate, from_first, vocab, match=r"logits at the first position")
