"""The optimisation loop of the static encoder: optimiser and learning-rate schedule, the batches of each
epoch, and MultipleNegativesRankingLoss steps over in-batch (and hard) negatives."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from embeddings.encoders.static_zh import StaticZhEmbedding
from training.data.pairs import sample_kind
from training.encoders.recipe import StaticRecipe
from training.encoders.record_pairs import PairBuilder
from training.encoders.supervised import SupervisedPairs

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["TrainingData", "TrainingRun", "run_training"]


@dataclass
class TrainingData:
    """What the batches are drawn from: records with pairs, supervised pairs, mined hard negatives."""

    builder: PairBuilder
    trainable: list[int]  # records that give at least one pair
    supervised: SupervisedPairs | None
    negatives: list[list[int]] | None  # BM25 neighbours per record, with ``hard_negatives``


@dataclass
class TrainingRun:
    steps: int = 0
    losses: list[float] = field(default_factory=list)
    kind_counts: Counter[str] = field(default_factory=Counter)


def _optimizer(
    module: StaticZhEmbedding, r: StaticRecipe
) -> tuple[torch.optim.Optimizer, torch.nn.Parameter | None]:
    """The optimiser, and the per-row log-scale it trains instead of the rows in ``train="weights"`` mode."""
    # "weights": the row directions stay as initialised, one log-scale per row is learnt (a learned term weight)
    log_scale = None
    if r.train == "weights":
        module.embedding.weight.requires_grad_(False)
        log_scale = torch.nn.Parameter(torch.zeros(module.num_embeddings))
        params = [log_scale]
    elif r.train == "full":
        params = list(module.parameters())
    else:
        raise ValueError(f"unknown train mode {r.train!r} (full, weights)")
    if r.optimizer == "sparse_adam" and log_scale is None:
        module.embedding.sparse = True
        return torch.optim.SparseAdam(params, lr=r.lr), log_scale
    if r.optimizer in ("adam", "sparse_adam"):
        return torch.optim.Adam(params, lr=r.lr, weight_decay=r.weight_decay), log_scale
    raise ValueError(f"unknown optimizer {r.optimizer!r} (adam, sparse_adam)")


def _lr_factor(total_steps: int, warmup_share: float) -> Callable[[int], float]:
    """Linear warm-up, then linear decay to zero."""
    warmup = max(1, int(total_steps * warmup_share))

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return lr_at


def _record_batches(trainable: Sequence[int], r: StaticRecipe, rng: random.Random) -> list[list[int]]:
    """One epoch of record batches; passes are shuffled separately so one batch never holds a record twice."""
    order = [i for _ in range(r.passes_per_epoch) for i in trainable]
    chunks = [order[p * len(trainable) : (p + 1) * len(trainable)] for p in range(r.passes_per_epoch)]
    for c in chunks:
        rng.shuffle(c)
    order = [i for c in chunks for i in c]
    return [order[b : b + r.batch_size] for b in range(0, len(order), r.batch_size)]


def _batch_columns(
    batch: Sequence[int], data: TrainingData, r: StaticRecipe, rng: random.Random, kinds: Counter[str]
) -> list[list[list[int]]]:
    """Queries, positives and (when any are used) negatives of a batch, as token-id lists."""
    builder, sup, negatives = data.builder, data.supervised, data.negatives
    qs, ps, ns = [], [], []
    in_batch = set(batch) if sup is None else sup.records_in(batch)
    for i in batch:
        if i < 0:  # a supervised pair (index -1 - j)
            q, p, neg = sup.triplet(-1 - i, in_batch, rng)
            kinds["supervised"] += 1
            qs.append(q)
            ps.append(p)
            ns.append(neg)
            continue
        kind = sample_kind(builder.kinds[i], r.kind_weights, rng)
        kinds[kind] += 1
        q, p = builder.pair(i, kind, rng)
        qs.append(q)
        ps.append(p)
        if negatives is not None:
            cands = [j for j in negatives[i] if j not in in_batch] or negatives[i]
            ns.append(builder.doc(rng.choice(cands)) if cands else builder.doc(rng.choice(data.trainable)))
        elif sup is not None:  # mixed batch: every row needs a negative; an extra random one
            ns.append(sup.random_doc(in_batch, rng))
    use_neg = negatives is not None or sup is not None
    return [qs, ps] + ([ns] if use_neg else [])


def _embed(
    module: StaticZhEmbedding, cols: list[list[list[int]]], log_scale: torch.nn.Parameter | None
) -> list[torch.Tensor]:
    feats = StaticZhEmbedding.collate([x for col in cols for x in col])
    if log_scale is None:
        emb = module.embedding(feats["input_ids"], feats["offsets"])
    else:
        emb = module.embedding(
            feats["input_ids"], feats["offsets"], per_sample_weights=log_scale.exp()[feats["input_ids"]]
        )
    n = len(cols[0])
    return [emb[k * n : (k + 1) * n] for k in range(len(cols))]


def run_training(
    model: SentenceTransformer, data: TrainingData, r: StaticRecipe, rng: random.Random, show_progress: bool
) -> TrainingRun:
    """Train ``model`` (a :class:`StaticZhEmbedding` alone) in place for ``r.epochs`` epochs; its rows are a
    plain word-bag afterwards, whatever the train mode."""
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from tqdm.auto import tqdm

    module: StaticZhEmbedding = model[0]
    directions = ("query_to_doc", "doc_to_query") if r.symmetric else ("query_to_doc",)
    loss_fn = MultipleNegativesRankingLoss(
        model,
        scale=r.scale,
        directions=directions,
        partition_mode="per_direction" if r.symmetric else "joint",
    )
    optimizer, log_scale = _optimizer(module, r)
    if data.supervised is None:
        steps_per_epoch = math.ceil(len(data.trainable) * r.passes_per_epoch / r.batch_size)
        total_steps = max(1, steps_per_epoch * r.epochs)
        planned = None
    else:  # mixed batches are planned up front: de-duplication can add a batch or two per epoch
        planned = [data.supervised.epoch_batches(data.trainable, rng) for _ in range(r.epochs)]
        total_steps = max(1, sum(len(bs) for bs in planned))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(total_steps, r.warmup))
    run = TrainingRun()
    model.train()
    bar = tqdm(total=total_steps, desc="training static encoder", unit="step", disable=not show_progress)
    for epoch in range(r.epochs):
        batches = _record_batches(data.trainable, r, rng) if planned is None else planned[epoch]
        for batch in (b for b in batches if len(b) >= 2):
            embeddings = _embed(module, _batch_columns(batch, data, r, rng, run.kind_counts), log_scale)
            loss = loss_fn.compute_loss_from_embeddings(embeddings, None)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            run.steps += 1
            run.losses.append(loss.item())
            bar.update(1)
            if run.steps % 10 == 0:
                bar.set_postfix(loss=f"{np.mean(run.losses[-10:]):.3f}")
    bar.close()
    module.embedding.sparse = False
    if log_scale is not None:  # fold the learnt weights into the rows: the saved model is a plain word-bag
        with torch.no_grad():
            module.embedding.weight.mul_(log_scale.exp()[:, None])
        module.embedding.weight.requires_grad_(True)
    model.eval()
    return run
