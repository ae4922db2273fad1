"""Benchmark sets written by the project on top of a public set, built at run time.

A project set keeps only query ids and the project's own query texts, in ``training/data/sets/<name>/queries.jsonl``
(lines ``{"_id": ..., "text": ..., "degenerate": bool}``). Its documents and relevance judgements are read from
the public set it was written for, under the bench data directory (``../shared/data/bench`` beside the
repository by default), so nothing of the public set is copied into the project.

``csl-need2doc-en``: English need statements for the query ids of ``csl-need2doc-dev`` (a cross-lingual set:
English needs, Chinese abstracts). Queries marked ``degenerate`` say next to nothing (their source clause was cut
badly, e.g. "solve the problem in a targeted way"); evaluations report figures with and without them.

``load_set`` is what evaluation code calls: a BEIR directory, or a project set by name or by the path it would
have under the bench data directory (``../shared/data/bench/csl-need2doc-en``).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from training.data.beir import BeirFormatError, load_beir, load_corpus, load_qrels

__all__ = [
    "PROJECT_SETS",
    "PublicSetMissing",
    "default_bench_dir",
    "degenerate_ids",
    "load_project_set",
    "load_set",
    "project_queries",
    "public_set_dir",
    "set_name",
]

# project set -> the public set that provides its documents and judgements
PROJECT_SETS: dict[str, str] = {"csl-need2doc-en": "csl-need2doc-dev"}
BENCH_PARTS = ("shared", "data", "bench")

Beir = tuple[dict[str, dict[str, str]], dict[str, str], dict[str, dict[str, int]]]


class PublicSetMissing(BeirFormatError):
    """The public set a project set is built on is not on this machine."""


def default_bench_dir() -> Path:
    """``<repo>/../shared/data/bench``, else the same beside the working directory; the first when neither
    exists (so that a message can name where it was looked for)."""
    repo = Path(__file__).resolve().parents[2]
    candidates = [repo.parent.joinpath(*BENCH_PARTS), Path.cwd().parent.joinpath(*BENCH_PARTS)]
    return next((c for c in candidates if c.is_dir()), candidates[0])


def _queries_file(name: str):
    if name not in PROJECT_SETS:
        raise BeirFormatError(f"no project set named {name!r} (known: {', '.join(sorted(PROJECT_SETS))})")
    return resources.files("training.data").joinpath("sets", name, "queries.jsonl")


def project_queries(name: str) -> list[dict]:
    """The rows of a project set's own queries file: ``{"_id", "text", "degenerate"}``, in file order."""
    source = _queries_file(name)
    rows: list[dict] = []
    seen: set[str] = set()
    for lineno, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{name}/queries.jsonl:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BeirFormatError(f"{where}: not valid JSON ({exc.msg})") from None
        qid, text, degenerate = row.get("_id"), row.get("text"), row.get("degenerate", False)
        if not isinstance(qid, str) or not qid or not isinstance(text, str) or not text.strip():
            raise BeirFormatError(f"{where}: expected a non-empty '_id' and 'text'")
        if not isinstance(degenerate, bool):
            raise BeirFormatError(f"{where}: 'degenerate' must be true or false")
        if qid in seen:
            raise BeirFormatError(f"{where}: duplicate query id {qid!r}")
        seen.add(qid)
        rows.append({"_id": qid, "text": text, "degenerate": degenerate})
    return rows


def set_name(source: str | Path) -> str | None:
    """The project set a source names (``csl-need2doc-en`` or a path ending in it that is not a directory)."""
    path = Path(source)
    return path.name if path.name in PROJECT_SETS and not path.is_dir() else None


def degenerate_ids(source: str | Path) -> set[str]:
    """Query ids marked degenerate for a source: a project set, or the public set one is written for (they
    share query ids); empty for any other set."""
    path = Path(source)
    names = [n for n, public in PROJECT_SETS.items() if path.name in (n, public)]
    return {r["_id"] for n in names for r in project_queries(n) if r["degenerate"]}


def public_set_dir(source: str | Path, bench_dir: str | Path | None = None) -> Path | None:
    """The public set directory a project set source is built from (None for any other source); raises
    `PublicSetMissing` with one readable line when it is not there."""
    name = set_name(source)
    if name is None:
        return None
    path = Path(source)
    if bench_dir is None:
        bench_dir = path.parent if path.parent != Path(".") else default_bench_dir()
    public = Path(bench_dir) / PROJECT_SETS[name]
    if not public.is_dir():
        raise PublicSetMissing(
            f"{name} is built on the public set {PROJECT_SETS[name]}, which is not at {public} "
            "(give the bench data directory that holds it)"
        )
    return public


def load_project_set(name: str, split: str, bench_dir: str | Path | None = None) -> Beir:
    """``(corpus, queries, qrels)`` of one split of a project set: the project's queries with the public set's
    corpus and qrels (under ``bench_dir``, default `default_bench_dir`). Every judged query must have a text
    here; queries not judged in the split are left out."""
    own = {r["_id"]: r["text"] for r in project_queries(name)}
    public = public_set_dir(name, bench_dir)
    assert public is not None  # `project_queries` has checked the name
    corpus = load_corpus(public)
    qrels = load_qrels(public, split)
    missing_q = [q for q in qrels if q not in own]
    if missing_q:
        raise BeirFormatError(
            f"{name}: {len(missing_q)} queries judged in {public} have no text here (first: {missing_q[0]!r})"
        )
    missing_d = sorted({d for rel in qrels.values() for d in rel if d not in corpus})
    if missing_d:
        raise BeirFormatError(
            f"{public}: {len(missing_d)} judged documents are not in corpus.jsonl (first: {missing_d[0]!r})"
        )
    return corpus, {q: own[q] for q in qrels}, qrels


def load_set(source: str | Path, split: str, bench_dir: str | Path | None = None) -> Beir:
    """A BEIR directory, or a project set by name (from ``bench_dir`` or the default bench data directory) or
    by its path under a bench data directory (built from that directory)."""
    public = public_set_dir(source, bench_dir)
    if public is None:
        return load_beir(source, split)
    return load_project_set(Path(source).name, split, public.parent)
