"""Assignment 03 sampling: temperature and top-k, and seeded generation from a prompt."""

from __future__ import annotations

import math

import pytest
import torch

from course_lib.lm.models import build_model
from course_lib.lm.sampling import generate, sample_next
from tests.lm.checks import check_generate
from tests.lm.synthetic import V


@pytest.mark.exercise("sample_next")
def test_sampling_follows_temperature_and_top_k():
    logits = torch.tensor([[0.0, math.log(3.0), -1.0, -2.0]]).repeat(4000, 1)
    draws = sample_next(logits, generator=torch.Generator().manual_seed(0))
    probs = torch.softmax(logits[0], 0)
    assert (draws == 1).float().mean().item() == pytest.approx(probs[1].item(), abs=0.03)
    top2 = sample_next(logits, top_k=2, generator=torch.Generator().manual_seed(0))
    assert set(top2.tolist()) == {0, 1}
    assert (top2 == 1).float().mean().item() == pytest.approx(0.75, abs=0.03)
    assert torch.all(sample_next(logits[:5], top_k=1) == 1)
    cold = sample_next(logits[:5], temperature=1e-3, generator=torch.Generator().manual_seed(0))
    assert torch.all(cold == 1)
    with pytest.raises(ValueError, match="temperature"):
        sample_next(logits, temperature=0)
    with pytest.raises(ValueError, match="top_k"):
        sample_next(logits, top_k=0)


@pytest.mark.exercise("generate")
def test_generate_feeds_back_the_last_positions_prediction(cyclic):
    check_generate(generate, cyclic.vocab)


@pytest.mark.exercise("generate")
def test_generate_is_seeded_and_continues_the_prompt(cyclic):
    torch.manual_seed(0)
    model = build_model("gpt1", V, 1, d_model=16, n_heads=2, max_len=8, dropout=0.0)
    text = generate(model, cyclic.vocab, "w3 w1", max_tokens=12, seed=5)
    assert text.startswith("w3 w1 ") and len(text.split()) == 14  # longer than max_len: context is cropped
    assert generate(model, cyclic.vocab, "w3 w1", max_tokens=12, seed=5) == text
