"""Resolving the configured encoder: the shipped default, a park-trained default, a local path, or a model name.

``MATCHER_ENCODER=default`` means, in this order:

1. ``data_dir/models/encoder-default`` when a model was trained or adapted for this store there
   (`matcher train encoder`);
2. otherwise the shipped default: the static student distilled from the packaged multilingual teacher, built
   once per machine into ``model_cache_dir`` (`matcher encoder build`; `matcher serve` and `matcher demo`
   build it when it is missing).
"""

from __future__ import annotations

import json
from pathlib import Path

from embeddings.encoders.base import Encoder
from matcher.errors import ServiceUnavailable
from matcher.settings import Settings

# the shipped default's recipe name (training.encoders.distil.DistilRecipe.name): its cache folder, and the key of
# its fusion calibration
SHIPPED_STUDENT = "e5-small-static-1"
SHIPPED_TEACHER = "multilingual-e5-small"


class EncoderUnavailable(ServiceUnavailable):
    """The configured encoder cannot be loaded: the service refuses to start rather than serve wrong answers."""


def encoder_present(directory: Path) -> bool:
    return (directory / "modules.json").is_file()


def shipped_student_dir(settings: Settings) -> Path:
    return settings.model_cache_dir / SHIPPED_STUDENT


def shipped_teacher_dir(settings: Settings) -> Path:
    return settings.model_cache_dir / SHIPPED_TEACHER


def encoder_location(settings: Settings) -> str:
    if settings.encoder == "default":
        if encoder_present(settings.default_encoder_dir):
            return str(settings.default_encoder_dir)
        return str(shipped_student_dir(settings))
    return settings.encoder


def encoder_recipe(location: str | Path) -> str | None:
    """The recipe name a model directory's training manifest records (None for models without one)."""
    try:
        manifest = json.loads((Path(location) / "training_manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    recipe = manifest.get("recipe") if isinstance(manifest, dict) else None
    name = recipe.get("name") if isinstance(recipe, dict) else None
    return name if isinstance(name, str) else None


def load_configured_encoder(settings: Settings) -> Encoder:
    from embeddings.encoders.sentence import load_encoder

    location = encoder_location(settings)
    if settings.encoder == "default" and not encoder_present(Path(location)):
        raise EncoderUnavailable(
            f"the default encoder is not built yet at {location}: run `matcher encoder build` "
            "(a few minutes, once per machine), or set MATCHER_ENCODER to a model path or name"
        )
    try:
        return load_encoder(location, offline=settings.hub_offline)
    except (ValueError, OSError) as exc:
        raise EncoderUnavailable(f"cannot load encoder {location!r}: {exc}") from None
