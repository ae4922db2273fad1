"""Train the embedded default encoder: a static word-bag model (:mod:`embeddings.encoders.static_zh`) on CPU.

Recipe (see ``docs/encoders.md`` for what was measured):

1. the records' titles, keywords and abstracts are tokenised once with :func:`embeddings.text.tokenize`
   (abstracts sentence by sentence and clause by clause, so that training pairs can be re-cut every epoch
   without tokenising again);
2. the vocabulary is every word seen ``min_count`` times or more, plus every Chinese character seen;
3. vectors start random (or from an SVD of a PPMI co-occurrence matrix) and are trained with
   sentence-transformers' ``MultipleNegativesRankingLoss`` (in-batch negatives, optionally one BM25 hard
   negative per pair) on self-supervised pairs from :mod:`training.data.pairs`: title -> abstract,
   keywords -> abstract, problem clause -> rest of the abstract, and inverse cloze (a sentence or clause ->
   the rest). Each epoch draws one pair per record, so a batch never holds two pairs of the same record;
4. optionally, supervised pairs given by the caller (``pairs=[(query, positive, negative or None), ...]``, e.g.
   accepted and rejected matches from feedback, or the training part of a labelled set) are mixed into the
   same batches, ``pair_repeats`` times per epoch: every query is ranked against its positive, every other
   positive and negative in the batch (in-batch negatives) and its own hard negative (the given one, else a
   BM25-mined record). A batch never holds a supervised pair and the record its positive is taken from.

The output directory loads with :func:`embeddings.encoders.sentence.load_encoder` and carries a
``training_manifest.json`` (data size, parameters, library versions, time). This module puts the steps
together; they live in ``training.encoders``: ``recipe`` (the knobs), ``corpus`` (1 and 2), ``initial``
(the starting vectors of 3), ``record_pairs`` (the pairs of 3), ``supervised`` (4), ``loop`` (the
optimisation) and ``manifest``.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from embeddings.encoders.static_zh import StaticZhEmbedding, text_tokens
from training.encoders.corpus import (
    SupervisedPair,
    TokenizedRecord,
    build_vocab,
    normalise_pairs,
    normalise_record,
    tokenize_records,
)
from training.encoders.initial import initial_matrix, model_word_vectors, teacher_word_vectors
from training.encoders.loop import TrainingData, run_training
from training.encoders.manifest import TrainingFacts, write_manifest
from training.encoders.recipe import StaticRecipe, resolve_recipe
from training.encoders.record_pairs import PairBuilder, mine_negatives
from training.encoders.supervised import PairTokens, SupervisedPairs

__all__ = ["train_static_encoder"]


def train_static_encoder(
    records: Iterable[Mapping[str, Any]],
    out_dir: str | os.PathLike,
    *,
    dim: int = 256,
    epochs: int | None = None,
    batch_size: int | None = None,
    exclude_ids: Iterable[str] = (),
    seed: int = 42,
    show_progress: bool = True,
    recipe: StaticRecipe | None = None,
    pairs: Iterable[Sequence[str | None]] | None = None,
    **overrides: Any,
) -> Path:
    """Train a static encoder on ``records`` (dicts with id, title, text, keywords) and save it to ``out_dir``.

    ``exclude_ids`` are dropped before anything is learnt from them (vocabulary included): pass every document
    id an evaluation judges. ``pairs`` are supervised ``(query, positive, hard negative or None)`` texts trained
    together with the records' own pairs (see the module docstring); pairs with an empty query or positive are
    dropped. ``recipe`` / ``overrides`` set the other knobs of :class:`StaticRecipe`.
    Returns the output directory.
    """
    started = time.time()
    r = resolve_recipe(recipe, overrides, dim=dim, seed=seed, epochs=epochs, batch_size=batch_size)
    excluded = {str(x) for x in exclude_ids}
    all_records = [normalise_record(x) for x in records]
    used = [x for x in all_records if x["id"] not in excluded and (x["text"] or x["title"])]
    if len(used) < 2:
        raise ValueError(f"need at least 2 records to train on, got {len(used)} after exclusions")
    supervised = normalise_pairs(pairs)

    old_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, r.threads))
    try:
        return _train(r, len(all_records), used, Path(out_dir), show_progress, started, supervised)
    finally:
        torch.set_num_threads(old_threads)


@dataclass
class _Vocabulary:
    toks: list[TokenizedRecord]
    pair_toks: list[PairTokens]
    words: list[str]
    teacher_rows: dict[str, np.ndarray]
    seconds_tokenising: float
    seconds_teacher: float


def _vocabulary(
    r: StaticRecipe,
    used: Sequence[Mapping[str, Any]],
    supervised: Sequence[SupervisedPair],
    show_progress: bool,
) -> _Vocabulary:
    """Records and supervised pairs as tokens, and the vocabulary they (and the teacher, if any) give."""
    t0 = time.time()
    toks = tokenize_records(used, show_progress)
    pair_toks = [(text_tokens(q), text_tokens(p), text_tokens(n) if n else None, p) for q, p, n in supervised]
    pair_toks = [x for x in pair_toks if x[0] and x[1]]
    t_tok = time.time() - t0
    # the supervised texts count towards the vocabulary (a need's words get rows), not towards idf
    pieces = [TokenizedRecord("", q, n or [], [[p]], None) for q, p, n, _ in pair_toks]
    vocab = build_vocab(list(toks) + pieces, r.min_count, r.max_vocab)
    teacher_rows: dict[str, np.ndarray] = {}
    t_teacher = 0.0
    if r.teacher or r.init_model:
        t1 = time.time()
        if r.init_model:
            teacher_rows = model_word_vectors(r.init_model, r.dim)
        if r.teacher:
            teacher_rows.update(teacher_word_vectors(r.teacher, vocab, r.teacher_words, r.dim))
        have = set(vocab)
        vocab = vocab + sorted(w for w in teacher_rows if w not in have)
        t_teacher = time.time() - t1
    return _Vocabulary(toks, pair_toks, vocab, teacher_rows, t_tok, t_teacher)


def _train(
    r: StaticRecipe,
    records_given: int,
    used: Sequence[Mapping[str, Any]],
    out: Path,
    show_progress: bool,
    started: float,
    supervised: Sequence[SupervisedPair],
) -> Path:
    from sentence_transformers import SentenceTransformer

    rng = random.Random(r.seed)
    torch.manual_seed(r.seed)
    np.random.seed(r.seed)

    v = _vocabulary(r, used, supervised, show_progress)
    module = StaticZhEmbedding(v.words, r.dim, num_buckets=r.num_buckets, subchars=r.subchars)
    builder = PairBuilder(module, v.toks, r)
    trainable = [i for i, k in enumerate(builder.kinds) if k]
    if not trainable and not supervised:
        raise ValueError("no training pairs could be built from the records (empty texts?)")
    with torch.no_grad():
        module.embedding.weight.copy_(initial_matrix(module, builder, r, v.teacher_rows))

    negatives = mine_negatives(v.toks, r.hard_negative_depth) if r.hard_negatives else None
    sup = SupervisedPairs(module, builder, v.toks, used, v.pair_toks, r) if v.pair_toks else None
    if sup is None and not trainable:
        raise ValueError("no training pairs could be built from the records (empty texts?)")

    model = SentenceTransformer(modules=[module], device="cpu")
    run = run_training(model, TrainingData(builder, trainable, sup, negatives), r, rng, show_progress)
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out), create_model_card=False)
    facts = TrainingFacts(
        records_given=records_given,
        records_used=len(used),
        records_with_pairs=len(trainable),
        supervised_pairs=sup.summary() if sup is not None else {"given": len(supervised), "used": 0},
        pairs_drawn=run.kind_counts,
        pair_kinds_available=Counter(k for ks in builder.kinds for k in ks),
        vocab_size=len(v.words),
        num_embeddings=module.num_embeddings,
        steps=run.steps,
        losses=run.losses,
        seconds_tokenising=v.seconds_tokenising,
        seconds_teacher=v.seconds_teacher,
        teacher_words=len(v.teacher_rows),
    )
    write_manifest(out, r, facts, started)
    return out
