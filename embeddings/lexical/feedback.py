"""Pseudo-relevance feedback (RM3) for the lexical side: a query expanded by the words of its best hits.

A short query names a topic in few words; the documents it finds first use more of the topic's words. RM3
(Lavrenko & Croft's relevance model, mixed back with the query as in Abdul-Jaleel et al., TREC 2004) takes
the top ``docs`` hits, weights each by how close its score is to the best one (``exp(-sharpness * (best -
score) / best)``), and gives every term of those documents ``sum over docs of weight(d) * tf(t, d) / |d| *
idf(t)``. The ``terms`` best become the expansion; the query's own terms keep ``1 - mix`` of the weight and
the expansion gets ``mix``.

Where it helps and where it does not was measured on the labelled sets (lexical side alone, nDCG@10; the
settings chosen on the dev split by grid, then read on test): Cranfield (English queries and documents) dev
0.343 -> 0.404, test 0.385 -> 0.424; csl-need2doc-dev (Chinese needs, one judged paper each) 0.756 -> 0.741-0.754
for every setting tried; English needs against Chinese papers (csl-need2doc-en) 0.276 -> 0.21-0.23 (the
dictionary's translations find noisy first hits, and feedback amplifies them). So the service expands only a
query without Chinese whose feedback documents are themselves mostly without Chinese: monolingual Latin-script
search, where RM3 is the established gain.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from embeddings.text import has_cjk


@dataclass(frozen=True)
class FeedbackConfig:
    """RM3 settings (chosen on Cranfield dev: see the module docstring)."""

    docs: int = 10  # feedback documents: the top hits
    terms: int = 40  # expansion terms kept
    mix: float = 0.7  # the expansion's share of the query weight
    sharpness: float = 10.0  # how fast a hit's weight falls with its score below the best
    min_latin_share: float = 0.5  # expand only when the feedback documents' terms are mostly not Chinese


DEFAULT_FEEDBACK = FeedbackConfig()


def _is_cjk_term(term: str) -> bool:
    return has_cjk(term)


def expand_query(
    index,  # embeddings.lexical.bm25.LexicalIndex (untyped here to keep the import graph one-way)
    terms: Sequence[str],
    hits: Sequence[tuple[int, float]],
    config: FeedbackConfig = DEFAULT_FEEDBACK,
) -> dict[str, float] | None:
    """The RM3-expanded query as ``{term: weight}`` (weights sum to 1), or None when feedback does not apply:
    no hits, no query terms, or feedback documents mostly in Chinese (see the module docstring). ``hits`` are
    the query's lexical hits, best first, with raw or normalised scores (only their ratios matter)."""
    top = [(doc, score) for doc, score in hits[: config.docs] if score > 0]
    if not top or not terms:
        return None
    best = top[0][1]
    docs = index.doc_terms([doc for doc, _ in top])
    if not docs:
        return None
    weight: dict[str, float] = {}
    cjk_mass = total_mass = 0.0
    for (doc_terms, tfs), (_, score) in zip(docs, top, strict=False):
        length = float(tfs.sum()) or 1.0
        pd = math.exp(-config.sharpness * (best - score) / best)
        for term, tf in zip(doc_terms, tfs.tolist(), strict=True):
            total_mass += tf
            if _is_cjk_term(term):
                cjk_mass += tf
            weight[term] = weight.get(term, 0.0) + pd * tf / length
    if total_mass == 0 or 1.0 - cjk_mass / total_mass < config.min_latin_share:
        return None
    df, n = index.doc_frequencies(weight)
    for term in weight:
        d = df.get(term, 0)
        weight[term] *= math.log1p((n - d + 0.5) / (d + 0.5)) if d else 0.0
    expansion = sorted(((w, t) for t, w in weight.items() if w > 0), reverse=True)[: config.terms]
    mass = sum(w for w, _ in expansion)
    if mass <= 0:
        return None
    query: dict[str, float] = {}
    for t in terms:
        query[t] = query.get(t, 0.0) + (1.0 - config.mix) / len(terms)
    for w, t in expansion:
        query[t] = query.get(t, 0.0) + config.mix * w / mass
    return query
