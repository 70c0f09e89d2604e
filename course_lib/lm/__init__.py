"""Assignment 03: language models on WikiText-2 (an LSTM and a mini GPT-1).

``config`` (:class:`LMSettings` with its defaults, the profiles, the course's twelve-configuration sweep
and the tuned variant, :data:`ASSIGNMENT`),
``data`` (splits, vocabulary, next-token windows, contiguous lanes), ``embeddings`` (GloVe onto the
vocabulary),
``models`` (the two architectures, :func:`build_model`, :func:`matching_gpt`), ``train`` (one run on the
generic loop),
``sampling`` (temperature / top-k text), ``compare`` (comparing finished runs from their files),
``grid`` (the sweep trained in the notebook's process), ``reference`` (pytorch/examples'
``word_language_model`` recipe, trained in the same process).
"""

from course_lib.lm.compare import (
    Comparison,
    averages,
    compare_runs,
    history_markdown,
    markdown_table,
    plot_run,
    side_by_side_markdown,
)
from course_lib.lm.config import ASSIGNMENT, LMSettings
from course_lib.lm.data import SPLITS, ContiguousLanes, LMCorpus, NextTokenWindows, Vocabulary, load_wikitext2
from course_lib.lm.embeddings import VocabEmbeddings, vocab_embeddings
from course_lib.lm.grid import run_grid_in_process
from course_lib.lm.models import (
    CausalSelfAttention,
    GPTBlock,
    LayerNorm,
    LSTMLanguageModel,
    MiniGPT1,
    TokenPositionEmbedding,
    build_model,
    future_influence,
    matching_gpt,
)
from course_lib.lm.reference import ReferenceResult, ratios_to_reference, train_reference
from course_lib.lm.sampling import generate, sample_next
from course_lib.lm.train import (
    CarriedState,
    LMResult,
    evaluate_loss,
    evaluate_stateful_loss,
    next_token_loss,
    perplexity,
    train_language_model,
    unigram_perplexity,
)

__all__ = [
    "ASSIGNMENT", "SPLITS", "CarriedState", "CausalSelfAttention", "Comparison", "ContiguousLanes",
    "GPTBlock", "LMCorpus", "LMResult", "LMSettings", "LSTMLanguageModel", "LayerNorm", "MiniGPT1",
    "NextTokenWindows", "ReferenceResult", "TokenPositionEmbedding", "VocabEmbeddings", "Vocabulary",
    "averages", "build_model", "compare_runs", "evaluate_loss", "evaluate_stateful_loss",
    "future_influence", "generate", "history_markdown", "load_wikitext2", "markdown_table", "matching_gpt",
    "next_token_loss", "perplexity", "plot_run", "run_grid_in_process", "sample_next",
    "ratios_to_reference", "side_by_side_markdown", "train_language_model", "train_reference",
    "unigram_perplexity", "vocab_embeddings",
]
