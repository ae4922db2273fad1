"""The recipe of the static encoder: every knob that shapes the trained model (written to its manifest)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from training.data.pairs import PAIR_KINDS

__all__ = ["StaticRecipe", "resolve_recipe"]


@dataclass
class StaticRecipe:
    """Everything that shapes the trained model (written to the manifest)."""

    dim: int = 256
    epochs: int = 20
    batch_size: int = 512
    lr: float = 0.003
    warmup: float = 0.05
    weight_decay: float = 0.0
    scale: float = 20.0  # MNRL inverse temperature
    symmetric: bool = False  # also rank queries for each document (doc_to_query)
    hard_negatives: bool = False  # one BM25-mined negative document per pair
    hard_negative_depth: int = 10
    min_count: int = 2
    max_vocab: int = 300_000
    num_buckets: int = 0
    subchars: bool = False
    init: str = "random"  # row directions: "random" | "svd" (of a PPMI co-occurrence matrix)
    init_norm: str = "idf"  # row norms: "const" | "idf" (idf ** idf_power)
    idf_power: float = 1.0
    pair_kinds: tuple[str, ...] = PAIR_KINDS
    kind_weights: dict[str, float] = field(
        default_factory=lambda: {"title": 1.0, "keywords": 1.0, "problem": 1.0, "ict": 1.0}
    )
    passes_per_epoch: int = 1  # pairs drawn per record per epoch
    ict_clause_prob: float = 0.5  # inverse cloze: a comma clause instead of a whole sentence
    ict_keep_prob: float = 0.0  # inverse cloze: keep the sentence in the document this often
    max_doc_tokens: int = 512
    optimizer: str = "adam"  # "adam" (dense) | "sparse_adam" (only rows seen in the batch are updated)
    teacher: str | None = None  # sentence-transformers model whose word vectors seed the latin (English) rows
    teacher_words: int = (
        30_000  # at most this many words from the teacher's own vocabulary, besides the corpus'
    )
    # a static model directory (e.g. the distilled student) whose rows seed every word it knows (direction; the
    # norm stays the init_norm's), and whose words join the vocabulary: the teacher's knowledge, adapted here
    init_model: str | None = None
    train: str = "full"  # "full": vectors are trained | "weights": only a per-token weight is trained
    threads: int = 1  # torch threads while training: the work is memory-bound, more threads mostly contend
    # supervised pairs (``pairs=`` of train_static_encoder): how often each is drawn per epoch, and where the
    # hard negative of a pair given without one comes from: "bm25" (a top BM25 record for the query that is
    # not its positive) | "random" (any record)
    pair_repeats: int = 1
    pair_negatives: str = "bm25"
    seed: int = 42


def resolve_recipe(
    recipe: StaticRecipe | None,
    overrides: dict[str, Any],
    *,
    dim: int,
    seed: int,
    epochs: int | None,
    batch_size: int | None,
) -> StaticRecipe:
    """A copy of ``recipe`` (default: the default recipe) with the overrides applied and checked."""
    r = StaticRecipe(**asdict(recipe)) if recipe else StaticRecipe()
    known = {f.name for f in fields(StaticRecipe)}
    bad = set(overrides) - known
    if bad:
        raise TypeError(f"unknown recipe settings: {sorted(bad)}")
    for k, v in overrides.items():
        setattr(r, k, v)
    r.dim, r.seed = dim, seed
    if epochs is not None:
        r.epochs = epochs
    if batch_size is not None:
        r.batch_size = batch_size
    r.pair_kinds = tuple(r.pair_kinds)
    if r.pair_negatives not in ("bm25", "random"):
        raise ValueError(f"unknown pair_negatives {r.pair_negatives!r} (bm25, random)")
    if r.pair_repeats < 0:
        raise ValueError("pair_repeats must be 0 or more")
    return r
