"""The checks of assignment 03's exercises, each a function of the implementation it checks: the public
tests run them on the library's functions, and ``test_wrong_answers.py`` runs them on deliberately wrong
implementations to show that each is rejected with a message that names what was expected (and, where a
known mistake explains the answer, that mistake).

Every check raises ``AssertionError`` on the first thing that is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

LAYOUT = ("q = qkv[..., 0:D], k = qkv[..., D:2D], v = qkv[..., 2D:3D], and head h takes the columns "
          "h*d_h:(h+1)*d_h of each (z.view(B, T, H, d_h))")
"""The layout of ``CausalSelfAttention.qkv``'s output that ``attention_weights`` must read."""


def show(t: torch.Tensor, n: int = 4) -> str:
    """The first ``n`` values of a tensor, with its shape: ``[0.1234, -0.5, ...] (shape (2, 3))``."""
    values = t.detach().float().flatten()[:n].tolist()
    more = ", ..." if t.numel() > n else ""
    return "[" + ", ".join(f"{v:.4f}" for v in values) + f"{more}] (shape {tuple(t.shape)})"


def _close(a: torch.Tensor, b: torch.Tensor, tol: float) -> bool:
    return a.shape == b.shape and torch.allclose(a.detach().float(), b.detach().float(), atol=tol, rtol=tol)


def assert_matches(got: torch.Tensor, expected: torch.Tensor, what: str,
                   mistakes: Mapping[str, torch.Tensor] | None = None, *, tol: float = 1e-5) -> None:
    """``got`` equals ``expected`` (same shape, values within ``tol``), else an ``AssertionError`` naming
    ``what``, the expected and the computed values, and the first of ``mistakes`` (name -> what that
    mistake computes) that ``got`` equals."""
    if not isinstance(got, torch.Tensor):
        raise AssertionError(f"{what}: expected a tensor of shape {tuple(expected.shape)}, got {got!r}")
    if got.shape != expected.shape:
        raise AssertionError(f"{what}: expected shape {tuple(expected.shape)}, got {tuple(got.shape)}")
    if _close(got, expected, tol):
        return
    got, expected = got.detach().float(), expected.detach().float()
    if got.dim() == 0:
        message = f"{what}: expected {float(expected):.6f}, got {float(got):.6f}"
    else:
        at = tuple(int(i) for i in torch.unravel_index((got - expected).abs().argmax(), got.shape))
        message = (f"{what}: expected {show(expected)}, got {show(got)}; the largest difference at "
                   f"{list(at)}: expected {float(expected[at]):.4f}, got {float(got[at]):.4f}")
    for name, value in (mistakes or {}).items():
        if _close(got, value, tol):
            message += f"\nthis is what {name} gives"
            break
    raise AssertionError(message)


# ------------------------------------------------------------------------------------------- the windows
def check_next_token_windows(cls: type) -> None:
    """``cls(ids, seq_len=4)`` on the stream 100, 101, ..., 113 (14 tokens: 3 windows, one token left over):
    window i is ``ids[4i : 4i + 4]`` and its targets ``ids[4i + 1 : 4i + 5]``."""
    ids = torch.arange(100, 114)
    windows = cls(ids, 4)
    overlap = "windows that overlap (window i starting at token i, not i * seq_len)"
    side_by_side = "windows of seq_len + 1 tokens side by side (window i starting at i * (seq_len + 1))"
    for i in range(3):
        x, y = windows[i]
        a = 4 * i
        where = f"NextTokenWindows(ids = 100, 101, ..., 113, seq_len=4)[{i}]"
        assert_matches(x, ids[a:a + 4], f"{where} inputs (ids[{a}:{a + 4}])", {
            overlap: ids[i:i + 4], side_by_side: ids[5 * i:5 * i + 4],
            "inputs and targets swapped (the inputs are the first T tokens of the window)": ids[a + 1:a + 5],
        })
        targets = f"{where} targets (ids[{a + 1}:{a + 5}], the inputs shifted by one)"
        assert_matches(y, ids[a + 1:a + 5], targets, {
            "the inputs themselves (the targets are the tokens that follow them)": ids[a:a + 4],
            overlap: ids[i + 1:i + 5], side_by_side: ids[5 * i + 1:5 * i + 5],
        })
        for name, part in (("inputs", x), ("targets", y)):
            if part.dtype != ids.dtype:
                raise AssertionError(f"{where} {name}: expected dtype {ids.dtype} (slices of ids), got "
                                     f"{part.dtype}")


# ---------------------------------------------------------------------------------------------- the loss
LOSS_LOGITS_SEED, LOSS_SHAPE = 0, (2, 4, 7)
LOSS_REFERENCE = 3.3224263191223145
"""``F.cross_entropy`` (mean) of :func:`loss_example`'s logits and targets."""


def loss_example() -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (2, 4, 7), not centred, and targets (2, 4), already shifted."""
    g = torch.Generator().manual_seed(LOSS_LOGITS_SEED)
    logits = torch.randn(*LOSS_SHAPE, generator=g) * 2.0 + 0.5
    targets = torch.randint(0, LOSS_SHAPE[-1], LOSS_SHAPE[:2], generator=g)
    return logits, targets


def check_next_token_loss(loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """The mean over all B x T positions of -log softmax(logits)[target], targets already shifted, as a
    float32 scalar tensor that carries the gradient."""
    logits, targets = loss_example()
    logits.requires_grad_(True)
    got = loss_fn(logits, targets)
    b, t, v = LOSS_SHAPE
    what = (f"next_token_loss of logits {LOSS_SHAPE} against targets {(b, t)} (the mean over all {b * t} "
            "positions of -log softmax(logits[b, t])[targets[b, t]], targets already shifted)")
    expected = torch.tensor(LOSS_REFERENCE)
    flat = F.cross_entropy(logits.detach().reshape(-1, v), targets.reshape(-1), reduction="none").view(b, t)
    shifted = F.cross_entropy(logits.detach()[:, :-1].reshape(-1, v), targets[:, 1:].reshape(-1))
    assert_matches(got, expected, what, {
        "the sum over the positions (the loss is their mean)": flat.sum(),
        "a sum over the T positions of each window, averaged over the B windows (average over all B x T)":
            flat.sum(1).mean(),
        "scoring logits[:, t] against targets[:, t + 1] (the targets are already shifted: do not shift "
        "again)": shifted,
        "the probability instead of the log-probability": -logits.detach().softmax(-1).gather(
            -1, targets.unsqueeze(-1)).mean(),
    })
    if got.dtype != torch.float32:
        raise AssertionError(f"next_token_loss: expected a float32 tensor, got {got.dtype}")
    if not got.requires_grad:
        raise AssertionError("next_token_loss: expected a tensor that carries the gradient to the logits "
                             "(no .item(), .detach() or torch.tensor(...) of a number), got one without")
    (grad,) = torch.autograd.grad(got, logits)
    one_hot = F.one_hot(targets, v).float()
    assert_matches(grad, (logits.detach().softmax(-1) - one_hot) / (b * t),
                   "the gradient of next_token_loss w.r.t. the logits ((softmax - one-hot) / (B T))")
    low = loss_fn(logits.detach().bfloat16(), targets)
    if low.dtype != torch.float32:
        raise AssertionError(f"next_token_loss of bfloat16 logits: expected a float32 loss (computed after "
                             f"logits.float()), got {low.dtype}")


# ----------------------------------------------------------------------------------------- layer norm
def check_layer_norm_init(cls: type[nn.Module]) -> None:
    """``cls(6, eps=1e-3)`` stores eps and has the parameters ``weight`` (ones) and ``bias`` (zeros), (6,)."""
    ln = cls(6, eps=1e-3)
    params = dict(ln.named_parameters())
    if not {"weight", "bias"} <= set(params):
        raise AssertionError(f"LayerNorm(6): expected nn.Parameters named 'weight' and 'bias' (registered by "
                             f"assigning nn.Parameter(...) to self.weight and self.bias), got parameters "
                             f"{sorted(params)}")
    assert_matches(params["weight"], torch.ones(6), "LayerNorm(6).weight (the gain, initially ones)")
    assert_matches(params["bias"], torch.zeros(6), "LayerNorm(6).bias (initially zeros)")
    if getattr(ln, "eps", None) != 1e-3:
        raise AssertionError(f"LayerNorm(6, eps=1e-3).eps: expected 0.001, got {getattr(ln, 'eps', None)!r}")


def layer_norm_input(dim: int = 6) -> torch.Tensor:
    """(3, 4, dim): rows of different means and spreads, one row of each window nearly constant (its
    variance below eps, so where eps goes matters); B, T and D all differ, so a wrong axis shows."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(3, 4, dim, generator=g) * torch.rand(3, 4, 1, generator=g).mul(4).add(0.5)
    x = x + torch.randn(3, 4, 1, generator=g) * 3
    x[:, 0] = 2.0 + 0.01 * torch.randn(3, dim, generator=g)
    return x


def _normalized(x: torch.Tensor, dims: int | tuple[int, ...], eps: float, *, unbiased: bool = False,
                eps_outside: bool = False) -> torch.Tensor:
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, keepdim=True, unbiased=unbiased)
    return (x - mean) / (var.sqrt() + eps if eps_outside else (var + eps).sqrt())


def check_layer_norm(cls: type[nn.Module]) -> None:
    """``cls(6, eps=1e-3)`` with random gain and bias computes what ``nn.LayerNorm(6, eps=1e-3)`` does, and
    the same gradients w.r.t. the input, the gain and the bias."""
    dim, eps = 6, 1e-3
    ours, ref = cls(dim, eps=eps), nn.LayerNorm(dim, eps=eps)
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for module in (ours, ref):
            module.weight.copy_(torch.randn(dim, generator=torch.Generator().manual_seed(5)) + 1.0)
            module.bias.copy_(torch.randn(dim, generator=torch.Generator().manual_seed(6)))
    x = layer_norm_input(dim).requires_grad_(True)
    got, expected = ours(x), ref(x)
    w, b = ref.weight.detach(), ref.bias.detach()
    xd = x.detach()
    assert_matches(got, expected, f"LayerNorm({dim}, eps={eps}) of (3, 4, {dim}) inputs, as nn.LayerNorm "
                   "(over the last dimension, biased variance, eps inside the square root)", {
                       "the unbiased variance (divided by D - 1, torch.var's default; layer norm divides "
                       "by D)": _normalized(xd, -1, eps, unbiased=True) * w + b,
                       "normalizing over dimension 0 (the batch), not the last one (the features)":
                           _normalized(xd, 0, eps) * w + b,
                       "normalizing over dimension 1 (the positions), not the last one (the features)":
                           _normalized(xd, 1, eps) * w + b,
                       "normalizing over all dimensions at once, not each vector over its last dimension":
                           _normalized(xd, (0, 1, 2), eps) * w + b,
                       "eps added to the standard deviation (it goes under the square root: sqrt(var + eps))":
                           _normalized(xd, -1, eps, eps_outside=True) * w + b,
                       "leaving out eps": _normalized(xd, -1, 0.0) * w + b,
                       "leaving out the gain and the bias (self.weight, self.bias)": _normalized(xd, -1, eps),
                   })
    upstream = torch.randn(got.shape, generator=g)
    ours_grads = torch.autograd.grad(got, (x, ours.weight, ours.bias), upstream, allow_unused=True)
    ref_grads = torch.autograd.grad(expected, (x, ref.weight, ref.bias), upstream)
    for name, mine, theirs in zip(("the input", "weight", "bias"), ours_grads, ref_grads, strict=True):
        if mine is None:
            raise AssertionError(f"LayerNorm: the output does not depend on {name} (expected the gradient "
                                 f"{show(theirs)})")
        assert_matches(mine, theirs, f"the gradient of LayerNorm w.r.t. {name}, as nn.LayerNorm's", tol=1e-4)


# ------------------------------------------------------------------------------------------ embeddings
def check_token_position_embedding(cls: type[nn.Module]) -> None:
    """``cls(11, 6, max_len=9, dropout)`` adds position t's vector to token t's (t = 0..T-1, the same for
    every row of the batch), and dropout acts once, on the sum, in training mode only."""
    torch.manual_seed(0)
    emb = cls(11, 6, 9, dropout=0.0)
    tokens = torch.tensor([[3, 1, 4, 1, 5], [9, 2, 6, 5, 3]])
    with torch.no_grad():
        tok, pos = emb.tokens(tokens), emb.positions.weight
        got = emb(tokens)
    what = ("TokenPositionEmbedding of tokens (2, 5): token t's vector plus the vector of position t = 0..4, "
            "self.tokens(tokens) + self.positions(torch.arange(5))")
    assert_matches(got, tok + pos[:5], what, {
        "leaving out the position vectors": tok,
        "positions counted from 1 (the first token gets position 0's vector)": tok + pos[1:6],
        "the position vectors of the batch rows (position b for row b), not of the tokens":
            tok + pos[:2].unsqueeze(1),
    })
    emb.drop.p = 0.5
    emb.train()
    torch.manual_seed(1)
    with torch.no_grad():
        dropped = emb(tokens)
    scaled = (tok + pos[:5]) * 2.0
    kept = torch.isclose(dropped, scaled, atol=1e-6)
    if not torch.all(kept | (dropped == 0)) or kept.all():
        raise AssertionError("TokenPositionEmbedding with dropout 0.5 in training mode: expected every value "
                             "0 or (token + position) / 0.5, some of each (self.drop applied once, to the "
                             f"sum), got {show(dropped)} against the sum / 0.5 {show(scaled)}")
    emb.eval()
    with torch.no_grad():
        assert_matches(emb(tokens), tok + pos[:5], "TokenPositionEmbedding in eval mode (no dropout)")


# ------------------------------------------------------------------------------------------- attention
def _heads(z: torch.Tensor, n_heads: int) -> torch.Tensor:
    b, t, d = z.shape
    return z.view(b, t, n_heads, d // n_heads).transpose(1, 2)


def _weights(q: torch.Tensor, k: torch.Tensor, scale: float, causal: bool = True) -> torch.Tensor:
    scores = q @ k.transpose(-2, -1) / scale
    if causal:
        t = q.shape[-2]
        scores = scores.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
    return scores.softmax(-1)


def attention_reference(attn: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The weights (B, H, T, T) and values (B, H, T, d_h) of ``attn`` on ``x``, by :data:`LAYOUT`."""
    with torch.no_grad():
        d, h = x.shape[-1], attn.n_heads
        q, k, v = (_heads(z, h) for z in attn.qkv(x).split(d, dim=-1))
        return _weights(q, k, math.sqrt(d // h)), v


def attention_mistakes(attn: nn.Module, x: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """What known mistakes give (weights, values): other layouts, q/k/v swapped, no mask, another scale."""
    with torch.no_grad():
        b, t, d = x.shape
        h, w = attn.n_heads, d // attn.n_heads
        qkv = attn.qkv(x)
        q, k, v = (_heads(z, h) for z in qkv.split(d, dim=-1))
        per_head = qkv.view(b, t, h, 3, w).permute(3, 0, 2, 1, 4)  # [q_h k_h v_h] per head
        strided = qkv.view(b, t, d, 3).permute(3, 0, 1, 2)  # q, k, v interleaved column by column
        qs, ks, vs = (_heads(z.contiguous(), h) for z in strided)
        return {
            "reading q, k, v per head (qkv.view(B, T, H, 3, d_h))":
                (_weights(per_head[0], per_head[1], math.sqrt(w)), per_head[2]),
            "reading q, k, v interleaved column by column (qkv.view(B, T, D, 3))":
                (_weights(qs, ks, math.sqrt(w)), vs),
            "q and k swapped": (_weights(k, q, math.sqrt(w)), v),
            "k and v swapped": (_weights(q, v, math.sqrt(w)), k),
            "q and v swapped": (_weights(v, k, math.sqrt(w)), q),
            "no causal mask (every query sees every key)": (_weights(q, k, math.sqrt(w), causal=False), v),
            "scores divided by sqrt(D), not by sqrt(d_h) = sqrt(D / H)": (_weights(q, k, math.sqrt(d)), v),
            "scores not divided by sqrt(d_h)": (_weights(q, k, 1.0), v),
        }


def check_attention_weights(cls: type[nn.Module]) -> None:
    """``attention_weights`` of ``cls(8, 2)`` on (2, 5, 8) inputs: causal rows summing to 1, and the weights
    and values that :data:`LAYOUT` gives."""
    torch.manual_seed(0)
    attn = cls(8, 2, dropout=0.0, max_len=6).eval()
    x = torch.randn(2, 5, 8) + 0.3
    with torch.no_grad():
        weights, values = attn.attention_weights(x)
    expected_w, expected_v = attention_reference(attn, x)
    for name, got, expected in (("weights", weights, expected_w), ("values", values, expected_v)):
        if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else got
            raise AssertionError(f"attention_weights of (2, 5, 8) with 2 heads: expected {name} of shape "
                                 f"{tuple(expected.shape)} (B, H, T, {'T' if name == 'weights' else 'd_h'}), "
                                 f"got {shape}")
    above = weights.triu(diagonal=1).abs().max()
    if above > 0:
        raise AssertionError(f"attention weights above the diagonal (a key after its query): expected 0 (the "
                             f"causal mask, self.mask[:T, :T], sets those scores to -inf), got up to "
                             f"{float(above):.4f}")
    sums = weights.sum(-1)
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-5):
        raise AssertionError(f"attention weights: expected every row to sum to 1 (a softmax over the keys, "
                             f"the last dimension), got row sums {show(sums)}")
    mistakes = attention_mistakes(attn, x)
    assert_matches(weights, expected_w, f"attention weights with the layout {LAYOUT}",
                   {name: w for name, (w, _) in mistakes.items()})
    assert_matches(values, expected_v, f"attention values with the layout {LAYOUT}",
                   {name: v for name, (_, v) in mistakes.items()})


def check_attention_forward(cls: type[nn.Module]) -> None:
    """``cls(6, 3)`` on (2, 4, 6) inputs: the heads' weighted values, concatenated in head order and
    projected by ``out``; causal (changing the last position changes no earlier output)."""
    torch.manual_seed(1)
    attn = cls(6, 3, dropout=0.0, max_len=4).eval()
    x = torch.randn(2, 4, 6)
    with torch.no_grad():
        out = attn(x)
        weights, values = attention_reference(attn, x)
        heads = weights @ values  # (B, H, T, d_h)
        expected = attn.out(heads.transpose(1, 2).reshape(2, 4, 6))
        reversed_heads = attn.out(heads.flip(1).transpose(1, 2).reshape(2, 4, 6))
        mixed = attn.out(heads.reshape(2, 4, 6))  # (B, H, T, d_h) reshaped without moving H next to d_h
    assert_matches(out, expected, "CausalSelfAttention.forward: the heads' weights @ values, head h in "
                   f"columns h*d_h:(h+1)*d_h, then self.out (attention with the layout {LAYOUT})", {
                       "the heads concatenated in reverse order": reversed_heads,
                       "reshaping (B, H, T, d_h) to (B, T, D) without first moving H next to d_h "
                       "(.transpose(1, 2))": mixed,
                       "leaving out self.out": heads.transpose(1, 2).reshape(2, 4, 6),
                   })
    changed = x.clone()
    changed[:, 3] += 1.0
    with torch.no_grad():
        assert_matches(attn(changed)[:, :3], out[:, :3],
                       "CausalSelfAttention outputs at positions 0..2 after changing position 3 (unchanged: "
                       "causal)")


def check_gpt_block(cls: type[nn.Module]) -> None:
    """``cls(8, 2)``'s forward, post-norm and pre-norm, from its own ``attn``, ``mlp``, ``ln1``, ``ln2``."""
    for norm_first in (False, True):
        torch.manual_seed(2)
        block = cls(8, 2, dropout=0.0, max_len=6, norm_first=norm_first).eval()
        with torch.no_grad():
            for ln in (block.ln1, block.ln2):  # gains and biases that make the two layer norms differ
                ln.weight.normal_(1.0, 0.3)
                ln.bias.normal_(0.0, 0.3)
            x = torch.randn(2, 5, 8) * 2 + 0.5
            h = block.ln1(x + block.attn(x))
            post = block.ln2(h + block.mlp(h))
            h = x + block.attn(block.ln1(x))
            pre = h + block.mlp(block.ln2(h))
            got = block(x)
        name, expected, other = ("pre-norm", pre, post) if norm_first else ("post-norm", post, pre)
        formula = ("x = x + attn(ln1(x)); x + mlp(ln2(x))" if norm_first
                   else "x = ln1(x + attn(x)); ln2(x + mlp(x))")
        assert_matches(got, expected, f"GPTBlock(norm_first={norm_first}), {name}: {formula}", {
            "the other order of layer norm and residual": other,
        })


# ------------------------------------------------------------------------------------- the whole GPT
def check_gpt_forward(cls: type[nn.Module]) -> None:
    """``cls(13, 2, norm_first=True)``'s logits: embed, both blocks in order, ln_f, head."""
    torch.manual_seed(3)
    model = cls(13, 2, d_model=8, n_heads=2, max_len=6, dropout=0.0, norm_first=True).eval()
    with torch.no_grad():
        model.ln_f.weight.normal_(1.0, 0.3)
        model.ln_f.bias.normal_(0.0, 0.3)
        tokens = torch.tensor([[1, 5, 7, 2, 12], [0, 3, 3, 9, 4]])
        got = model(tokens)
        x = model.embed(tokens)
        first = model.blocks[0](x)
        both = model.blocks[1](first)
        swapped = model.blocks[0](model.blocks[1](x))
    assert_matches(got, model.head(model.ln_f(both)),
                   "MiniGPT1.forward: head(ln_f(block_2(block_1(embed(tokens)))))",
                   {"leaving out ln_f": model.head(both),
                    "only the first block": model.head(model.ln_f(first)),
                    "the blocks in reverse order": model.head(model.ln_f(swapped))})


# ----------------------------------------------------------------------------------- evaluation loops
class Bigram(nn.Module):
    """A tiny language model with dropout: the logits (B, T, V) at position t depend on token t only."""

    def __init__(self, vocab_size: int, dropout: float = 0.5):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)
        self.drop = nn.Dropout(dropout)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.drop(self.table(tokens))


def check_evaluate_loss(fn: Callable[..., float]) -> None:
    """``fn(model, ids, seq_len=4, batch_size=2)`` on 5 windows (batches of 2, 2 and 1 windows): the mean
    over the 20 tokens, in eval mode, the model's mode restored."""
    torch.manual_seed(0)
    model = Bigram(9)
    ids = torch.randint(0, 9, (23,), generator=torch.Generator().manual_seed(1))
    x, y = ids[:20].view(5, 4), ids[1:21].view(5, 4)
    with torch.no_grad():
        model.eval()
        per_token = F.cross_entropy(model(x).reshape(-1, 9), y.reshape(-1), reduction="none").view(5, 4)
        model.train()
    got = fn(model, ids, seq_len=4, batch_size=2)
    if not isinstance(got, float):
        raise AssertionError(f"evaluate_loss: expected a Python float, got {type(got).__name__} {got!r}")
    expected = float(per_token.mean())
    if abs(got - expected) > 1e-5:
        batch_means = (per_token[:2].mean() + per_token[2:4].mean() + per_token[4].mean()) / 3
        hint = ("\nthis is the mean of the 3 batch means (the last batch holds 1 window, not 2: weight each "
                "batch's mean by its tokens)" if abs(got - float(batch_means)) < 1e-5 else "")
        raise AssertionError(f"evaluate_loss of 5 windows of 4 tokens in batches of 2: expected "
                             f"{expected:.6f} (the mean over all 20 tokens, in eval mode: dropout off), got "
                             f"{got:.6f}{hint}")
    if not model.training:
        raise AssertionError("evaluate_loss: expected the model back in training mode afterwards (it was in "
                             "training mode before), got it in eval mode")
    model.eval()
    fn(model, ids, seq_len=4, batch_size=2)
    if model.training:
        raise AssertionError("evaluate_loss: expected a model in eval mode to stay in eval mode, got it in "
                             "training mode")


class Recurrent(nn.Module):
    """A tiny recurrent language model: ``(tokens (B, T), state) -> (logits (B, T, V), state)``."""

    def __init__(self, vocab_size: int = 7, hidden: int = 5):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, hidden)
        self.lstm = nn.LSTM(hidden, hidden, batch_first=True)
        self.head = nn.Linear(hidden, vocab_size)

    def forward(self, tokens: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        out, state = self.lstm(self.embed(tokens), state)
        return self.head(out), state


def check_carried_state(cls: type) -> None:
    """A fresh ``cls()`` on two chunks of 2 lanes (5 then 4 tokens): the losses of one pass over the whole
    lanes, the state kept detached, and ``first=True`` starting again from zeros."""
    torch.manual_seed(4)
    model = Recurrent()
    ids = torch.randint(0, 7, (2, 10), generator=torch.Generator().manual_seed(5))
    x, y = ids[:, :9], ids[:, 1:]
    with torch.no_grad():
        whole, _ = model(x)
        fresh, _ = model(x[:, 5:])
    expected = [F.cross_entropy(whole[:, s].reshape(-1, 7), y[:, s].reshape(-1))
                for s in (slice(0, 5), slice(5, 9))]
    carried = cls()
    loss, count = carried(model, (x[:, :5], y[:, :5], True))
    assert_matches(loss, expected[0], "CarriedState on the first chunk (first=True: from zeros), its mean "
                   "loss")
    if count != 10:
        raise AssertionError(f"CarriedState: expected the chunk's token count 10 (2 lanes x 5), got "
                             f"{count!r}")
    state = carried.state
    if not isinstance(state, tuple) or any(t.requires_grad for t in state):
        got = (type(state).__name__ if not isinstance(state, tuple) else
               "tensors that still require grad (the gradient would flow into earlier chunks)")
        raise AssertionError("CarriedState: expected self.state to hold the model's final state as a tuple "
                             f"of detached tensors (t.detach() for each), got {got}")
    loss, count = carried(model, (x[:, 5:], y[:, 5:], False))
    fresh_loss = F.cross_entropy(fresh.reshape(-1, 7), y[:, 5:].reshape(-1))
    assert_matches(loss, expected[1], "CarriedState on the second chunk (first=False: from the state the "
                   "first ended in), its mean loss", {"starting the chunk from zeros": fresh_loss})
    if not loss.requires_grad:
        raise AssertionError("CarriedState: expected a loss that carries the gradient (for training), got "
                             "one without")
    again, _ = carried(model, (x[:, :5], y[:, :5], True))
    assert_matches(again, expected[0], "CarriedState on a chunk marked first=True after others (from zeros "
                   "again)", {"carrying the state into a chunk marked first": _after_the_lanes(model, x, y)})


def _after_the_lanes(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The loss of the first chunk (5 tokens) read after the whole lanes (the state not reset)."""
    with torch.no_grad():
        _, state = model(x)
        logits, _ = model(x[:, :5], state)
    return F.cross_entropy(logits.reshape(-1, 7), y[:, :5].reshape(-1))


def check_unigram_perplexity(fn: Callable[..., float]) -> None:
    """Add-one smoothed frequencies of the train tokens: counts + 1 = (3, 2, 1, 1) over 7 for [0, 0, 1]."""
    got = fn(torch.tensor([0, 0, 1]), torch.tensor([0, 2, 3, 1]), 4)
    expected = math.exp(-(math.log(3 / 7) + math.log(1 / 7) + math.log(1 / 7) + math.log(2 / 7)) / 4)
    if not isinstance(got, float) or not math.isclose(got, expected, rel_tol=1e-9):
        raise AssertionError(f"unigram_perplexity of train [0, 0, 1] on [0, 2, 3, 1], 4 words: expected "
                             f"{expected:.6f} (p = (count + 1) / (3 + 4): 3/7, 2/7, 1/7, 1/7), got {got!r}")


# -------------------------------------------------------------------------------------------- sampling
class Successor(nn.Module):
    """A certain language model: after token i it predicts i + 1 (mod V) with all but certainty; it refuses
    inputs longer than ``max_len``."""

    def __init__(self, vocab_size: int, max_len: int):
        super().__init__()
        self.vocab_size, self.max_len = vocab_size, max_len
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.shape[1] > self.max_len:
            raise AssertionError(f"generate fed {tokens.shape[1]} tokens to a model of "
                                 f"max_len={self.max_len}: expected at most the last max_len tokens "
                                 "(ids[:, -limit:])")
        return F.one_hot((tokens + 1) % self.vocab_size, self.vocab_size).float() * 30.0 + self.bias


def check_generate(fn: Callable[..., str], vocab) -> None:
    """``fn(Successor, vocab, "w3 w1", max_tokens=6)`` continues w1 with w2, w3, ... (the last position's
    logits fed back each step), within the model's ``max_len`` of 4."""
    model = Successor(len(vocab), max_len=4)
    got = fn(model, vocab, "w3 w1", max_tokens=6, seed=0)
    expected = "w3 w1 w2 w3 w4 w5 w6 w7"
    if got != expected:
        ids = [3, 1]
        for _ in range(6):  # what the logits at the first position of each (cropped) input give
            ids.append(ids[-model.max_len:][0] + 1)
        first = " ".join(f"w{i}" for i in ids)
        hint = ("\nthis is what the logits at the first position give (the next token comes from the last "
                "position, logits[:, -1])" if got == first else "")
        raise AssertionError(f"generate from 'w3 w1' with a model that always predicts the next word id: "
                             f"expected {expected!r}, got {got!r}{hint}")
