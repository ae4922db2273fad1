"""Loader for benchmark sets in the BEIR layout.

A set is a directory holding::

    corpus.jsonl          one JSON object per line: {"_id": ..., "title": ..., "text": ...}
    queries.jsonl         one JSON object per line: {"_id": ..., "text": ...}
    qrels/<split>.tsv     tab separated, with a header line: query-id  corpus-id  score

Errors name the file and line so that a broken set is fixed at its source rather than guessed around.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["BeirFormatError", "load_beir", "load_corpus", "load_queries", "load_qrels", "qrels_splits"]


class BeirFormatError(ValueError):
    """A benchmark file is missing or has a malformed row."""


def _require(path: Path) -> Path:
    if not path.is_file():
        raise BeirFormatError(f"missing benchmark file: {path}")
    return path


def _read_jsonl(path: Path):
    with _require(path).open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BeirFormatError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise BeirFormatError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
            if "_id" not in row or row["_id"] in (None, ""):
                raise BeirFormatError(f"{path}:{lineno}: row has no '_id'")
            yield lineno, row


def load_corpus(directory: str | Path) -> dict[str, dict[str, str]]:
    """``{doc_id: {"title": str, "text": str}}`` from ``corpus.jsonl``."""
    path = Path(directory) / "corpus.jsonl"
    corpus: dict[str, dict[str, str]] = {}
    for lineno, row in _read_jsonl(path):
        doc_id = str(row["_id"])
        if doc_id in corpus:
            raise BeirFormatError(f"{path}:{lineno}: duplicate document id {doc_id!r}")
        title, text = row.get("title") or "", row.get("text") or ""
        if not isinstance(title, str) or not isinstance(text, str):
            raise BeirFormatError(f"{path}:{lineno}: 'title' and 'text' must be strings")
        corpus[doc_id] = {"title": title, "text": text}
    return corpus


def load_queries(directory: str | Path) -> dict[str, str]:
    """``{query_id: text}`` from ``queries.jsonl``."""
    path = Path(directory) / "queries.jsonl"
    queries: dict[str, str] = {}
    for lineno, row in _read_jsonl(path):
        text = row.get("text")
        if not isinstance(text, str):
            raise BeirFormatError(f"{path}:{lineno}: query has no 'text' string")
        queries[str(row["_id"])] = text
    return queries


def qrels_splits(directory: str | Path) -> list[str]:
    """Names of the splits that have a qrels file, e.g. ``["dev", "test"]``."""
    qdir = Path(directory) / "qrels"
    return sorted(p.stem for p in qdir.glob("*.tsv")) if qdir.is_dir() else []


def load_qrels(directory: str | Path, split: str) -> dict[str, dict[str, int]]:
    """``{query_id: {doc_id: graded relevance}}`` from ``qrels/<split>.tsv``."""
    path = Path(directory) / "qrels" / f"{split}.tsv"
    if not path.is_file():
        have = qrels_splits(directory)
        hint = f" (splits present: {', '.join(have)})" if have else ""
        raise BeirFormatError(f"missing qrels file: {path}{hint}")
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n\r")
            if not line.strip():
                continue
            parts = line.split("\t")
            if lineno == 1 and parts[0].strip().lower() in ("query-id", "query_id", "qid"):
                continue
            if len(parts) != 3:
                raise BeirFormatError(f"{path}:{lineno}: expected 3 tab-separated columns, got {len(parts)}")
            qid, did, score = (p.strip() for p in parts)
            try:
                grade = int(float(score))
            except ValueError:
                raise BeirFormatError(f"{path}:{lineno}: relevance score {score!r} is not a number") from None
            qrels.setdefault(qid, {})[did] = grade
    return qrels


def load_beir(
    directory: str | Path, split: str
) -> tuple[dict[str, dict[str, str]], dict[str, str], dict[str, dict[str, int]]]:
    """``(corpus, queries, qrels)`` of one split; queries are restricted to those judged in the split.

    Every judged query must exist in ``queries.jsonl``; judged documents missing from the corpus are an error
    too, since they would silently lower every score.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise BeirFormatError(f"benchmark directory not found: {directory}")
    corpus = load_corpus(directory)
    all_queries = load_queries(directory)
    qrels = load_qrels(directory, split)
    missing_q = [q for q in qrels if q not in all_queries]
    if missing_q:
        raise BeirFormatError(
            f"{directory}: {len(missing_q)} judged queries are not in queries.jsonl (first: {missing_q[0]!r})"
        )
    missing_d = sorted({d for rel in qrels.values() for d in rel if d not in corpus})
    if missing_d:
        raise BeirFormatError(
            f"{directory}: {len(missing_d)} judged documents are not in corpus.jsonl (first: {missing_d[0]!r})"
        )
    queries = {q: all_queries[q] for q in qrels}
    return corpus, queries, qrels


def judged_doc_ids(directory: str | Path) -> set[str]:
    """Every document id judged in any split of a set (what a trained model must not have seen)."""
    ids: set[str] = set()
    for split in qrels_splits(directory):
        for rel in load_qrels(directory, split).values():
            ids.update(rel)
    return ids
