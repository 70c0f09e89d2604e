"""Assignment 03: language models on WikiText-2 (an LSTM and a mini GPT-1).

``data`` (splits, vocabulary, next-token windows), ``embeddings`` (GloVe onto the vocabulary),
``models`` (the two architectures, :func:`build_model`), ``train`` (one run on the generic loop),
``sampling`` (temperature / top-k text), ``compare`` (the twelve configurations and their comparison).
"""

from course_lib.lm.compare import compare_runs, history_markdown, markdown_table, run_grid, sweep_configs
from course_lib.lm.data import SPLITS, LMCorpus, NextTokenWindows, Vocabulary, load_wikitext2
from course_lib.lm.embeddings import vocab_embeddings
from course_lib.lm.models import (
    CausalSelfAttention,
    GPTBlock,
    LSTMLanguageModel,
    MiniGPT1,
    build_model,
    future_influence,
)
from course_lib.lm.sampling import generate, sample_next
from course_lib.lm.train import LMSettings, evaluate_loss, perplexity, train_language_model

__all__ = [
    "SPLITS", "CausalSelfAttention", "GPTBlock", "LMCorpus", "LMSettings", "LSTMLanguageModel", "MiniGPT1",
    "NextTokenWindows", "Vocabulary", "build_model", "compare_runs", "evaluate_loss", "future_influence",
    "generate", "history_markdown", "load_wikitext2", "markdown_table", "perplexity", "run_grid",
    "sample_next", "sweep_configs", "train_language_model", "vocab_embeddings",
]
