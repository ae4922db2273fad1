"""One typed Settings object read from the environment (prefix MATCHER_); nothing else reads os.environ."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MATCHER_", env_file=None, extra="ignore")

    # storage
    data_dir: Path = Path("./data")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default is a SQLite file in data_dir (WAL mode)"
    )

    # encoder and indexes
    encoder: str = Field(
        default="default",
        description="'default' (the project's own model in data_dir/models/encoder-default), "
        "a local path, or a sentence-transformers model name",
    )
    hub_offline: bool = Field(
        default=False,
        description="look a model name up in the local Hugging Face cache only, never on the Hub "
        "(the encoder, a training teacher); local model directories never go online",
    )
    approximate_threshold: int = 50_000
    # how often a running service looks for a ranker activated outside it (`matcher train ranker`, another worker)
    model_poll_s: float = Field(15.0, ge=0)
    # while a ranker is on interleaved trial (matcher/models/trial.py): the share of match requests that interleave
    # it (all by default: a park's outcomes are few, and each interleaved list keeps the incumbent's best
    # picks near the top), the decided lists at which it is judged, and how often a running service looks
    trial_share: float = Field(1.0, ge=0.0, le=1.0)
    trial_votes: int = Field(40, ge=10)
    trial_check_s: float = Field(300.0, ge=0)
    dense_weight: float = Field(
        default=0.1, ge=0.0, le=1.0, description="fusion weight of the dense side for Chinese queries"
    )
    dense_weight_latin: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="fusion weight of the dense side for queries without Chinese text; the default encoder "
        "is trained on Chinese, raise this for a multilingual MATCHER_ENCODER",
    )
    default_min_score: float = Field(default=0.0, ge=0.0, le=1.0)
    max_per_provider: int = Field(default=2, ge=1)

    # limits
    max_body_bytes: int = 1_000_000
    max_import_bytes: int = 50_000_000
    max_import_rows: int = 100_000
    max_text_chars: int = 20_000
    max_query_chars: int = 2_000
    max_k: int = 200

    # security
    secret_key: str | None = Field(
        default=None, description="signs unsubscribe links; generated into data_dir/secret.key when unset"
    )

    # mail and notifications
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_tls: Literal["none", "starttls", "tls"] = "none"
    smtp_timeout: float = 20.0
    mail_from: str = "parkmatch <noreply@parkmatch.local>"
    mail_rate_per_second: float = 10.0
    public_url: str = "http://127.0.0.1:8000"
    webhook_allow_private: bool = True
    webhook_timeout: float = 5.0
    notify_threshold: float = 0.5

    log_level: str = "INFO"

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return v.expanduser()

    @cached_property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'parkmatch.db').resolve()}"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def default_encoder_dir(self) -> Path:
        return self.models_dir / "encoder-default"

    def resolved_secret(self) -> str:
        """The signing secret: from settings, else a random one persisted beside the data."""
        if self.secret_key:
            return self.secret_key
        import secrets

        path = self.data_dir / "secret.key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(32)
        path.write_text(key)
        path.chmod(0o600)
        return key
