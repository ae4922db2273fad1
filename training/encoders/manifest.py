"""training_manifest.json of a trained encoder: data sizes, recipe, pairs drawn, timings, library versions."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from embeddings.persist import atomic_write_json, library_versions
from training.encoders.recipe import StaticRecipe

__all__ = ["MANIFEST_NAME", "TrainingFacts", "write_manifest"]

logger = logging.getLogger(__name__)

MANIFEST_NAME = "training_manifest.json"


@dataclass
class TrainingFacts:
    """What a training run saw and did, beyond its recipe."""

    records_given: int
    records_used: int
    records_with_pairs: int
    supervised_pairs: dict[str, Any]
    pairs_drawn: Counter[str]
    pair_kinds_available: Counter[str]
    vocab_size: int
    num_embeddings: int
    steps: int
    losses: list[float]
    seconds_tokenising: float
    seconds_teacher: float
    teacher_words: int


def write_manifest(out: Path, r: StaticRecipe, facts: TrainingFacts, started: float) -> None:
    """Write ``out/training_manifest.json`` atomically (``started``: the run's start, ``time.time()``)."""
    elapsed = time.time() - started
    manifest = {
        "model": "static word-bag encoder (embeddings.encoders.static_zh.StaticZhEmbedding)",
        "created_unix": int(time.time()),
        "records_given": facts.records_given,
        "records_excluded": facts.records_given - facts.records_used,
        "records_used": facts.records_used,
        "records_with_pairs": facts.records_with_pairs,
        "supervised_pairs": facts.supervised_pairs,
        "pairs_drawn": dict(facts.pairs_drawn),
        "pair_kinds_available": dict(facts.pair_kinds_available),
        "vocab_size": facts.vocab_size,
        "num_embeddings": facts.num_embeddings,
        "recipe": {**asdict(r), "pair_kinds": list(r.pair_kinds)},
        "steps": facts.steps,
        "final_loss": float(np.mean(facts.losses[-20:])) if facts.losses else None,
        "seconds_tokenising": round(facts.seconds_tokenising, 2),
        "seconds_teacher": round(facts.seconds_teacher, 2),
        "teacher_words": facts.teacher_words,
        "seconds_total": round(elapsed, 2),
        "cpu_threads": torch.get_num_threads(),
        "libraries": library_versions("torch", "sentence_transformers", "numpy", "jieba"),
    }
    atomic_write_json(out / MANIFEST_NAME, manifest, indent=2)
    logger.info("static encoder trained in %.1fs on %d records -> %s", elapsed, facts.records_used, out)
