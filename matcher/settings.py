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
    model_cache_dir: Path = Field(
        default_factory=lambda: Path.home() / ".cache" / "parkmatch" / "models",
        description="where the shipped default encoder (and its packaged teacher) is built once per machine",
    )
    # the teacher tier (matcher/indexing/teacher_tier.py): off by default, since on 2 CPU cores the teacher embeds
    # about 9 documents per CPU-second in the background and adds about 20 ms to every query
    teacher: Literal["off", "on"] = Field(
        default="off",
        description="'on': re-score candidates with the multilingual teacher's vectors, embedded by a background "
        "queue (docs/encoders.md, 'The teacher tier')",
    )
    teacher_model: Path | None = Field(
        default=None,
        description="the teacher's model directory; unset: model_cache_dir/multilingual-e5-small",
    )
    teacher_batch: int = Field(32, ge=1, description="records the teacher tier embeds per batch")
    reindex_on_model_change: bool = Field(
        default=False,
        description="rebuild an index made by another model at start instead of refusing to start "
        "(`matcher reindex` rebuilds on request)",
    )
    approximate_threshold: int = 50_000
    # index snapshots shared by replicas (matcher/indexing/snapshots.py): a replica with an empty data dir starts
    # from the newest one that fits; a running one writes one every `snapshot_every_s` while its indexes change
    snapshot_dir: Path | None = Field(
        default=None,
        description="a directory every replica can read and write (shared volume); unset: no snapshots",
    )
    snapshot_every_s: float = Field(
        600.0, ge=0, description="seconds between a replica's snapshots while its indexes change; 0: never"
    )
    snapshot_keep: int = Field(3, ge=1, description="snapshots kept in snapshot_dir (the newest)")
    # how often a running service looks for a ranker activated outside it (`matcher train ranker`, another worker)
    model_poll_s: float = Field(15.0, ge=0)
    # while a ranker is on interleaved trial (matcher/models/trial.py): the share of match requests that interleave
    # it (all by default: a park's outcomes are few, and each interleaved list keeps the incumbent's best
    # picks near the top), the decided lists at which it is judged, and how often a running service looks
    trial_share: float = Field(1.0, ge=0.0, le=1.0)
    trial_votes: int = Field(40, ge=10)
    trial_check_s: float = Field(300.0, ge=0)
    dense_weight: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="fusion weight of the dense side for Chinese queries; unset: the encoder's calibration",
    )
    dense_weight_latin: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="fusion weight of the dense side for queries without Chinese text; unset: the encoder's "
        "calibration",
    )
    default_min_score: float = Field(default=0.0, ge=0.0, le=1.0)
    max_per_provider: int = Field(default=2, ge=1)

    # the change feed (store/feed.py) every serving process follows (indexing/follower.py)
    feed_poll_s: float = Field(
        1.0, gt=0, description="how often the feed is read when no NOTIFY woke the follower (SQLite: always)"
    )
    feed_batch: int = Field(1000, ge=1, description="feed entries applied per step")
    feed_gap_grace_s: float = Field(
        5.0, ge=0, description="how long a hole in the feed's seqs may stay before it is called a gap"
    )
    min_seq_wait_s: float = Field(
        2.0, ge=0, le=30, description="how long a read with min_seq waits for this replica to apply it"
    )
    ready_max_lag_seq: int = Field(
        10_000, ge=0, description="/readyz says not ready while this replica is more feed entries behind"
    )
    ready_max_lag_s: float = Field(
        30.0, ge=0, description="/readyz says not ready while the oldest entry not applied is older (seconds)"
    )

    # limits
    max_body_bytes: int = 1_000_000
    max_import_bytes: int = 50_000_000
    max_import_rows: int = 100_000
    max_text_chars: int = 20_000
    max_query_chars: int = 2_000
    max_k: int = 200
    # total bytes of request header names and values; larger requests get 431 (`matcher serve` also stops
    # reading a request head a little past this, before it is buffered whole)
    max_header_bytes: int = Field(16_384, ge=1024)

    # request rate limits: token buckets per API key and per tenant (a request must fit in both), refilled at
    # `*_per_s` tokens a second up to `*_burst`; a request costs 1 token, a match or search `rate_cost_match`,
    # an import or digest run `rate_cost_bulk`. Requests without a valid key share a bucket per client address.
    rate_limit_enabled: bool = True
    rate_key_per_s: float = Field(20.0, gt=0)
    rate_key_burst: float = Field(200.0, ge=1)
    rate_tenant_per_s: float = Field(60.0, gt=0)
    rate_tenant_burst: float = Field(600.0, ge=1)
    rate_anonymous_per_s: float = Field(5.0, gt=0)
    rate_anonymous_burst: float = Field(50.0, ge=1)
    rate_cost_match: float = Field(5.0, ge=1)
    rate_cost_bulk: float = Field(20.0, ge=1)
    # how long the limiter reuses a verified key's identity (a revoke through this process forgets it at once)
    rate_key_cache_s: float = Field(30.0, ge=0)
    redis_url: str | None = Field(
        default=None,
        description="redis://host:port/db shares the rate limit buckets between replicas; unset (or Redis "
        "unreachable) keeps them in process",
    )

    # security
    secret_key: str | None = Field(
        default=None,
        description="signs unsubscribe and resource-page links; generated into data_dir/secret.key when unset",
    )
    # people signing in to the workbench (/ui): a session ends after `session_idle_minutes` without a request or
    # `session_max_hours` after sign-in; `login_max_failures` wrong passwords in a row lock the account for
    # `login_lockout_minutes`
    session_idle_minutes: float = Field(120.0, gt=0)
    session_max_hours: float = Field(12.0, gt=0)
    login_max_failures: int = Field(5, ge=1)
    login_lockout_minutes: float = Field(15.0, gt=0)
    # how long the resource-page link of a digest item keeps working
    resource_link_days: int = Field(60, ge=1)

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

    # background jobs (matcher/jobs): a Celery broker shared by the API replicas and the task workers
    broker_url: str | None = Field(
        default=None,
        description="amqp://... (RabbitMQ) or redis://...; unset: the API runs everything in the request and "
        "`matcher worker` / `--queue` use amqp://guest:guest@127.0.0.1:5672//",
    )
    import_async_bytes: int = Field(
        5_000_000,
        ge=0,
        description="an import body larger than this runs as a job (202) when a broker is set",
    )
    digest_chunk: int = Field(500, ge=1, description="enterprises per digest task of `digest run --queue`")
    digest_lease_s: float = Field(
        900.0,
        gt=0,
        description="how long a digest claimed for sending belongs to its run (then: unconfirmed)",
    )
    job_queue_depth_cache_s: float = Field(5.0, ge=0, description="how long the queue depth gauge is reused")
    webhook_max_attempts: int = Field(6, ge=1, description="webhook delivery attempts of a queued delivery")

    log_level: str = "INFO"
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="json: every log line one JSON object (time, level, logger, message, request_id)",
    )

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
