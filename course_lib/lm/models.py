"""The two language models: an LSTM and a mini GPT-1, one configurable class each.

Both map tokens (B, T) to next-token logits (B, T, V). Input embeddings may start from pretrained
vectors (e.g. GloVe 50d); when the model width differs, a linear projection maps them to it.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from course_lib.core.settings import check_choice
from course_lib.core.training import count_parameters
from course_lib.lm.config import GPT_BESIDE, MODELS, LMSettings


class TokenEmbedding(nn.Module):
    """Token ids (B, T) -> vectors (B, T, D): an (optionally pretrained) table of width E, projected
    to D when E != D."""

    def __init__(self, vocab_size: int, dim: int, pretrained: torch.Tensor | None = None,
                 table_dim: int | None = None):
        super().__init__()
        if pretrained is not None:
            if pretrained.shape[0] != vocab_size:
                raise ValueError(f"pretrained has {pretrained.shape[0]} rows but vocab_size={vocab_size}")
            table_dim = int(pretrained.shape[1])
        table_dim = table_dim or dim
        self.table = nn.Embedding(vocab_size, table_dim)
        if pretrained is not None:
            with torch.no_grad():
                self.table.weight.copy_(torch.as_tensor(pretrained, dtype=torch.float32))
        else:
            nn.init.normal_(self.table.weight, std=0.1)
        self.project = nn.Linear(table_dim, dim, bias=False) if table_dim != dim else nn.Identity()

    @property
    def table_dim(self) -> int:
        return self.table.embedding_dim

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.project(self.table(tokens))


class OutputLayer(nn.Module):
    """Hidden states (B, T, D) -> logits (B, T, V); with ``tie`` the decoder reuses the embedding
    table (D is first projected to the table's width)."""

    def __init__(self, dim: int, vocab_size: int, embedding: TokenEmbedding, tie: bool):
        super().__init__()
        self.tied = embedding if tie else None
        width = embedding.table_dim if tie else dim
        self.pre = nn.Linear(dim, width) if width != dim else nn.Identity()
        self.decoder = nn.Linear(width, vocab_size)
        if tie:
            self.decoder.weight = embedding.table.weight

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.pre(h))


class LayerNorm(nn.Module):
    """Layer normalization (Ba et al., 2016) over the last dimension, written out; the GPT's blocks use it.

    ``x`` (..., D) -> (..., D). Each vector ``x[..., :]`` (the D features of one token) is normalized on
    its own: ``(x - mean) / sqrt(var + eps) * weight + bias``, where ``mean`` and ``var`` are taken over
    its D features only (the last dimension, never over the batch or the positions), ``var`` is the
    *biased* variance (the mean of the squared deviations, divided by D, not D - 1) and ``eps`` sits
    inside the square root. ``weight`` (the gain) and ``bias``, both (D,), are learnable, one per
    feature. The same computation as ``nn.LayerNorm(dim, eps)``, whose parameters have the same names.
    """

    def __init__(self, dim: int, eps: float = 1e-5):
        """Store ``eps`` as ``self.eps`` and create ``self.weight`` (ones) and ``self.bias`` (zeros), each an
        ``nn.Parameter`` of shape (dim,), so that they are trained (and saved) with the model."""
        super().__init__()
        ### BEGIN SOLUTION
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., D) -> (..., D), each vector over its last dimension normalized, scaled and shifted."""
        ### BEGIN SOLUTION
        mean = x.mean(dim=-1, keepdim=True)
        var = (x - mean).pow(2).mean(dim=-1, keepdim=True)
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias
        ### END SOLUTION


class TokenPositionEmbedding(nn.Module):
    """The GPT's input: token ids (B, T) -> vectors (B, T, D), the token's vector plus its position's.

    ``self.tokens`` (a :class:`TokenEmbedding`: ids (B, T) -> (B, T, D)) gives each token's vector;
    ``self.positions`` (an ``nn.Embedding(max_len, D)``, learned) gives one vector per position 0, 1, ...,
    max_len - 1. A transformer's attention is blind to order; the position vectors are what tells it
    where each token stands.
    """

    def __init__(self, vocab_size: int, dim: int, max_len: int, dropout: float = 0.1,
                 pretrained: torch.Tensor | None = None, table_dim: int | None = None):
        super().__init__()
        self.tokens = TokenEmbedding(vocab_size, dim, pretrained, table_dim)
        self.positions = nn.Embedding(max_len, dim)
        nn.init.normal_(self.positions.weight, std=0.02)
        self.drop = nn.Dropout(dropout)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T), T <= max_len -> ``self.drop(self.tokens(tokens) + self.positions(p))`` (B, T, D),
        where ``p`` holds the positions 0, 1, ..., T - 1 (on the tokens' device): token t of every row of
        the batch gets the vector of position t added, the first token that of position 0. Dropout acts
        once, on the sum."""
        ### BEGIN SOLUTION
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        return self.drop(self.tokens(tokens) + self.positions(positions))
        ### END SOLUTION


class LSTMLanguageModel(nn.Module):
    """Embedding -> dropout -> ``num_layers`` LSTM layers of width ``hidden`` -> dropout -> logits."""

    def __init__(self, vocab_size: int, num_layers: int = 1, *, hidden: int = 512, dropout: float = 0.5,
                 tie_weights: bool = False, pretrained: torch.Tensor | None = None, emb_dim: int = 50):
        super().__init__()
        self.embed = TokenEmbedding(vocab_size, emb_dim if pretrained is None else int(pretrained.shape[1]),
                                    pretrained)
        self.drop = nn.Dropout(dropout)
        # nn.LSTM's own dropout acts between layers only (it warns when there is just one).
        self.lstm = nn.LSTM(self.embed.table_dim, hidden, num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.head = OutputLayer(hidden, vocab_size, self.embed, tie_weights)

    def forward(self, tokens: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        """tokens (B, T) -> (logits (B, T, V), (h, c) each (num_layers, B, hidden)), starting from ``state``
        (zeros when None)."""
        x = self.drop(self.embed(tokens))
        out, state = self.lstm(x, state)
        return self.head(self.drop(out)), state


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which position t attends only to positions <= t."""

    mask: torch.Tensor

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.1, max_len: int = 1024):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.attn_drop = nn.Dropout(dropout)
        self.register_buffer("mask", torch.tril(torch.ones(max_len, max_len, dtype=torch.bool)),
                             persistent=False)

    def attention_weights(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, D) -> (weights (B, H, T, T), values (B, H, T, D/H)), H = ``self.n_heads``.

        The layout of ``self.qkv(x)`` (B, T, 3D): its last dimension is Q, then K, then V, each D wide:
        ``q = qkv[..., 0:D]``, ``k = qkv[..., D:2D]``, ``v = qkv[..., 2D:3D]``. Within each, head h owns
        the d_h = D/H consecutive columns ``h*d_h : (h+1)*d_h`` (head 0 the first d_h, head 1 the next,
        ...), as ``z.view(B, T, H, d_h)`` splits them; moved to (B, H, T, d_h), one (T, d_h) matrix per
        head.

        weights[b, h] = softmax over the keys of ``q_h k_h^T / sqrt(d_h)`` (rows: queries, columns: keys),
        with every entry above the diagonal (a key after its query) set to -inf before the softmax
        (``self.mask[:T, :T]`` is True on and below the diagonal), so each row sums to 1 over the keys
        <= its query; values[b, h] = v_h. No dropout here (``forward`` applies it to the weights).
        """
        ### BEGIN SOLUTION
        b, t, d = x.shape
        heads, width = self.n_heads, d // self.n_heads
        q, k, v = self.qkv(x).split(d, dim=-1)
        q, k, v = (z.view(b, t, heads, width).transpose(1, 2) for z in (q, k, v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(width)
        scores = scores.masked_fill(~self.mask[:t, :t], float("-inf"))
        return scores.softmax(dim=-1), v
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, D) -> (B, T, D): ``self.attn_drop`` on the weights, weights @ values per head
        (B, H, T, d_h), the heads concatenated back in their order (head h in columns h*d_h : (h+1)*d_h,
        as ``attention_weights`` split them) and projected by ``self.out``."""
        ### BEGIN SOLUTION
        b, t, d = x.shape
        weights, v = self.attention_weights(x)
        return self.out((self.attn_drop(weights) @ v).transpose(1, 2).reshape(b, t, d))
        ### END SOLUTION


class GPTBlock(nn.Module):
    """Causal self-attention and a GELU MLP, each in a residual branch with layer norm (:class:`LayerNorm`).

    ``norm_first=False`` (the default) is GPT-1's post-norm, as in Radford et al. (2018):
    x = LN(x + f(x)), the layer norm after the residual add; ``True`` is pre-norm (x = x + f(LN(x)),
    GPT-2's choice), which trains more stably without warm-up.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.1, max_len: int = 1024,
                 norm_first: bool = False):
        super().__init__()
        self.norm_first = norm_first
        self.ln1, self.ln2 = LayerNorm(d_model), LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_heads, dropout, max_len)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, D) -> (B, T, D). Post-norm (``norm_first=False``):
        ``x = ln1(x + drop(attn(x)))``, then ``ln2(x + drop(mlp(x)))``; pre-norm:
        ``x = x + drop(attn(ln1(x)))``, then ``x + drop(mlp(ln2(x)))``."""
        ### BEGIN SOLUTION
        if self.norm_first:
            x = x + self.drop(self.attn(self.ln1(x)))
            return x + self.drop(self.mlp(self.ln2(x)))
        x = self.ln1(x + self.drop(self.attn(x)))
        return self.ln2(x + self.drop(self.mlp(x)))
        ### END SOLUTION


class MiniGPT1(nn.Module):
    """Token embedding + learned positions (:class:`TokenPositionEmbedding`) -> ``num_layers`` GPT blocks
    -> logits (pre-norm blocks, ``norm_first=True``, add a final layer norm; post-norm blocks already end
    with one)."""

    def __init__(self, vocab_size: int, num_layers: int = 1, *, d_model: int = 256, n_heads: int = 4,
                 max_len: int = 256, dropout: float = 0.1, tie_weights: bool = False,
                 pretrained: torch.Tensor | None = None, norm_first: bool = False,
                 emb_dim: int | None = None):
        super().__init__()
        self.max_len = max_len
        self.embed = TokenPositionEmbedding(vocab_size, d_model, max_len, dropout, pretrained, emb_dim)
        self.blocks = nn.ModuleList(
            GPTBlock(d_model, n_heads, dropout, max_len, norm_first) for _ in range(num_layers)
        )
        self.ln_f = LayerNorm(d_model) if norm_first else nn.Identity()
        self.head = OutputLayer(d_model, vocab_size, self.embed.tokens, tie_weights)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) with T <= max_len -> logits (B, T, V): ``self.embed``, every block of
        ``self.blocks`` in order, ``self.ln_f``, then ``self.head``."""
        t = tokens.shape[1]
        if t > self.max_len:
            raise ValueError(f"sequence length {t} exceeds max_len={self.max_len}")
        ### BEGIN SOLUTION
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))
        ### END SOLUTION


def build_model(name: str, vocab_size: int, num_layers: int = 1, **options) -> nn.Module:
    """``"lstm"`` -> :class:`LSTMLanguageModel`, ``"gpt1"`` -> :class:`MiniGPT1`; options go to the class."""
    classes = {"lstm": LSTMLanguageModel, "gpt1": MiniGPT1}
    check_choice("model", name, MODELS)
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}")
    return classes[name](vocab_size, num_layers, **options)


def gpt_width(budget: int, vocab_size: int, num_layers: int, *, n_heads: int, **options) -> int:
    """The width ``d_model`` (a multiple of ``n_heads``) of the GPT whose trainable parameter count
    (``count_parameters``) is nearest ``budget``; ``options`` go to :class:`MiniGPT1` (``pretrained``,
    ``tie_weights``, ...). The count grows with the width, so a bisection over the multiples finds it."""

    def size(units: int) -> int:
        return count_parameters(build_model("gpt1", vocab_size, num_layers, d_model=units * n_heads,
                                            n_heads=n_heads, **options))

    lo, hi = 1, 2
    while size(hi) < budget:
        lo, hi = hi, 2 * hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if size(mid) < budget else (lo, mid)
    best = min((lo, hi), key=lambda units: abs(size(units) - budget))
    return best * n_heads


def model_options(settings: LMSettings) -> dict[str, Any]:
    """The constructor options of ``settings.model`` (for :func:`build_model`) that its knobs set."""
    common = dict(dropout=settings.dropout_rate, tie_weights=settings.tie_weights,
                  **({} if settings.emb_dim is None else {"emb_dim": settings.emb_dim}))
    if settings.model == "lstm":
        return dict(hidden=settings.hidden, **common)
    return dict(d_model=settings.d_model, n_heads=settings.n_heads, max_len=settings.seq_len,
                norm_first=settings.norm_first, **common)


def matching_gpt(settings: LMSettings, vocab_size: int, pretrained: torch.Tensor | None = None) -> LMSettings:
    """The settings of the GPT trained beside the model of ``settings`` on the same tokens:
    :data:`~course_lib.lm.config.GPT_BESIDE`'s knobs, and the ``d_model`` (a multiple of ``n_heads``)
    whose parameter count is nearest that model's (both built for ``vocab_size`` words and the initial
    vectors ``pretrained`` (V, E), and counted by ``count_parameters``)."""
    budget = count_parameters(build_model(settings.model, vocab_size, settings.num_layers,
                                          pretrained=pretrained, **model_options(settings)))
    gpt = settings.override(**GPT_BESIDE)
    options = {k: v for k, v in model_options(gpt).items() if k not in ("d_model", "n_heads")}
    width = gpt_width(budget, vocab_size, gpt.num_layers, n_heads=gpt.n_heads, pretrained=pretrained,
                      **options)
    return gpt.override(d_model=width)


def logits_of(output) -> torch.Tensor:
    """The logits (B, T, V) of a model's output (a tensor, or a tuple whose first element they are)."""
    return output[0] if isinstance(output, tuple) else output


@torch.no_grad()
def future_influence(model: nn.Module, tokens: torch.Tensor, t: int, vocab_size: int, *,
                     seed: int = 0) -> tuple[float, float]:
    """Change every token after position ``t`` of ``tokens`` (B, T) to a different random one and
    return the largest change of the logits at positions <= t and at positions > t (eval mode).

    A causal model gives exactly 0 for the first number: the past cannot see the future.
    """
    if not 0 <= t < tokens.shape[1] - 1:
        raise ValueError(f"t must be in [0, {tokens.shape[1] - 2}] for sequences of length {tokens.shape[1]}")
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    shift = torch.randint(1, vocab_size, tokens[:, t + 1 :].shape, generator=generator).to(tokens.device)
    changed = tokens.clone()
    changed[:, t + 1 :] = (tokens[:, t + 1 :] + shift) % vocab_size
    delta = (logits_of(model(tokens)) - logits_of(model(changed))).abs()
    return float(delta[:, : t + 1].max()), float(delta[:, t + 1 :].max())
