"""Which fusion weights and score calibration serve an encoder (`Relevance`), and where they come from.

In this order: a ``fusion.json`` inside the encoder's model directory (written by `matcher calibrate` for a model
trained or adapted for this store), the calibration shipped for the encoder's recipe
(``data/fusion/<recipe>.json``: fitted by `matcher calibrate` on the public benchmark sets, held out by query,
see docs/encoders.md), else the built-in defaults. Settings that name a dense weight still win per request
(`MatchEngine.dense_weight_for`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from embeddings.encoders.base import Encoder
from matcher.matching.retrieval import Relevance
from matcher.models.encoder import encoder_recipe
from matcher.settings import Settings

logger = logging.getLogger(__name__)

SHIPPED = Path(__file__).with_name("data") / "fusion"
FILE_NAME = "fusion.json"


def read_fusion(path: Path) -> Relevance:
    """A calibration file as a Relevance; raises ValueError when it is malformed."""
    body = json.loads(path.read_text(encoding="utf-8"))
    languages = {}
    for lang, p in body["languages"].items():
        w, mid, scale = float(p["w"]), float(p["mid"]), float(p["scale"])
        if not (0.0 <= w <= 1.0 and scale > 0):
            raise ValueError(f"{path}: {lang}: weight outside [0, 1] or scale not positive")
        languages[str(lang)] = (w, mid, scale)
    if not languages:
        raise ValueError(f"{path}: no languages")
    return Relevance(languages=languages, source=str(path))


TEACHER_SUFFIX = ".teacher.json"


def teacher_fusion_for(teacher: Encoder) -> Relevance:
    """The teacher tier's calibration: ``fusion.teacher.json`` inside the teacher's model directory, else the one
    shipped for its model (``data/fusion/<model directory name>.teacher.json``). Raises `TeacherUnavailable` (one
    line) when there is none, or when it was fitted for a teacher of another dimension."""
    from matcher.indexing.teacher_tier import TeacherUnavailable

    source = getattr(teacher, "source", None)
    name = teacher.model_id.split("@", 1)[0].rsplit("/", 1)[-1]
    candidates = [Path(source) / f"fusion{TEACHER_SUFFIX}"] if source and Path(source).is_dir() else []
    candidates.append(SHIPPED / f"{name}{TEACHER_SUFFIX}")
    for path in candidates:
        if not path.is_file():
            continue
        try:
            relevance = read_fusion(path)
            dimension = json.loads(path.read_text(encoding="utf-8")).get("dimension")
        except (ValueError, KeyError, TypeError, OSError) as exc:
            raise TeacherUnavailable(f"the teacher tier's calibration {path} is unusable: {exc}") from None
        if dimension is not None and int(dimension) != teacher.dimension:
            raise TeacherUnavailable(
                f"the teacher {teacher.model_id!r} has dimension {teacher.dimension}, but the teacher tier's "
                f"calibration {path} was fitted for dimension {dimension}: set MATCHER_TEACHER_MODEL to that "
                "teacher, or calibrate this one (`matcher calibrate --teacher`)"
            )
        return relevance
    raise TeacherUnavailable(
        f"no teacher-tier calibration for {teacher.model_id!r} (looked for {', '.join(map(str, candidates))}): "
        "run `matcher calibrate --teacher --out <model dir>/fusion.teacher.json`"
    )


def fusion_for(encoder: Encoder, settings: Settings | None = None) -> Relevance:
    """The calibration for ``encoder`` (see the module docstring)."""
    source = getattr(encoder, "source", None)
    candidates: list[Path] = []
    if source and Path(source).is_dir():
        candidates.append(Path(source) / FILE_NAME)
        recipe = encoder_recipe(source)
        if recipe:
            candidates.append(SHIPPED / f"{recipe}.json")
    for path in candidates:
        if path.is_file():
            try:
                return read_fusion(path)
            except (ValueError, KeyError, TypeError, OSError) as exc:
                logger.warning("calibration %s unusable (%s): trying the next", path, exc)
    return Relevance()
