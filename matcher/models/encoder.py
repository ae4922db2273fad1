"""Resolving the configured encoder: the project's own default model, a local path, or a model name."""

from __future__ import annotations

from pathlib import Path

from embeddings.encoders.base import Encoder
from matcher.errors import ServiceUnavailable
from matcher.settings import Settings


class EncoderUnavailable(ServiceUnavailable):
    """The configured encoder cannot be loaded: the service refuses to start rather than serve wrong answers."""


def encoder_location(settings: Settings) -> str:
    if settings.encoder == "default":
        return str(settings.default_encoder_dir)
    return settings.encoder


def load_configured_encoder(settings: Settings) -> Encoder:
    from embeddings.encoders.sentence import load_encoder

    location = encoder_location(settings)
    if settings.encoder == "default" and not Path(location).exists():
        raise EncoderUnavailable(
            f"no default encoder at {location}: run `matcher demo` (loads demo data and trains it) "
            "or `matcher train encoder`, or set MATCHER_ENCODER to a model path or name"
        )
    try:
        return load_encoder(location, offline=settings.hub_offline)
    except (ValueError, OSError) as exc:
        raise EncoderUnavailable(f"cannot load encoder {location!r}: {exc}") from None
