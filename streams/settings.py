"""Settings, read once from the environment at start-up.

Every variable is ``LUNA_`` plus the field name in capitals, for example
``LUNA_KAFKA_BOOTSTRAP``. When ``.local/stack.env`` exists (written by
``deploy/local/stack.sh up``) it supplies defaults, so commands run in a
checkout find the local broker and database; the environment always wins.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env_file() -> Path | None:
    explicit = os.environ.get("LUNA_ENV_FILE")
    if explicit:
        return Path(explicit)
    local = PROJECT_ROOT / ".local" / "stack.env"
    return local if local.exists() else None


class Settings(BaseSettings):
    """Every setting of the worker, the gateway and the CLI."""

    model_config = SettingsConfigDict(env_prefix="LUNA_", frozen=True, extra="ignore")

    kafka_bootstrap: str = Field(default="127.0.0.1:9092", description="host:port[,host:port]")
    #: Prefix of every topic name and of the worker's consumer group, so that
    #: several deployments (or test runs) share one cluster.
    topic_prefix: str = Field(default="luna.", pattern=r"^[A-Za-z0-9._-]*$")
    #: Partitions of every topic; all topics must have the same count so that
    #: a user's records, tables and timers live in one worker.
    partitions: int = Field(default=8, ge=1, le=1024)
    replication_factor: int = Field(default=1, ge=1)

    database_url: SecretStr = SecretStr("postgresql://luna@127.0.0.1:5432/luna")
    database_schema: str = Field(default="public", pattern=r"^[a-z_][a-z0-9_]*$")
    database_pool_max: int = Field(default=10, ge=1)

    worker_metrics_port: int = Field(default=0, ge=0, le=65535, description="0 disables the endpoint")
    worker_data_dir: Path = PROJECT_ROOT / ".local" / "faust"
    #: How often the ticker looks for due schedules, in seconds.
    ticker_interval_s: float = Field(default=1.0, gt=0, le=60)
    #: Seconds between offset commits of the worker.
    commit_interval_s: float = Field(default=1.0, gt=0)
    #: A worker whose committed offsets stay still this long while records
    #: wait exits with status 75 for its supervisor to restart it; 0 turns
    #: the check off.
    stall_timeout_s: float = Field(default=300.0, ge=0)
    stall_check_interval_s: float = Field(default=5.0, gt=0)
    #: A worker that stops sending heartbeats for this long (it crashed) is
    #: dropped from the group and its partitions move to the others. The
    #: broker's default lower bound is 6 s.
    session_timeout_s: float = Field(default=10.0, ge=6.0)

    #: How far behind a user's newest event an event may arrive and still
    #: count in its pattern window, in seconds. Older events are late.
    pattern_allowed_lateness_s: float = Field(default=600.0, ge=0)
    #: How often the absence detector checks for users gone quiet, in seconds.
    absence_check_interval_s: float = Field(default=5.0, gt=0)

    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(default=8080, ge=0, le=65535)
    #: Base URL that external senders use to reach the gateway, printed with
    #: each new hook; empty means ``http://<gateway_host>:<gateway_port>``.
    gateway_public_url: str = ""

    #: Largest webhook body accepted, in bytes; a body of exactly this size is
    #: accepted, one byte more is a 413.
    webhook_max_body_bytes: int = Field(default=256 * 1024, ge=1, le=900 * 1024)
    #: Allowed distance between a signed timestamp and the gateway's clock.
    webhook_timestamp_tolerance_s: int = Field(default=300, ge=1, le=3600)
    #: How long a replaced secret keeps verifying after a rotation.
    webhook_rotation_grace_s: int = Field(default=24 * 3600, ge=0, le=30 * 24 * 3600)
    #: How long the worker remembers a delivery id; senders retry for up to
    #: 3 days (Stripe) or about 75 hours (Standard Webhooks).
    webhook_dedupe_retention_s: int = Field(default=4 * 24 * 3600, ge=1)
    #: Token bucket per hook in each gateway: sustained calls per second and
    #: the burst on top of it.
    webhook_rate_per_s: float = Field(default=10.0, gt=0)
    webhook_burst: int = Field(default=20, ge=1)
    #: Maximum wait for the broker to acknowledge a webhook before a 503.
    webhook_publish_timeout_s: float = Field(default=5.0, gt=0, le=60)
    #: How long the gateway reuses a hook read from the database.
    webhook_hook_cache_s: float = Field(default=5.0, ge=0, le=300)

    #: HMAC-SHA256 key of the tokens that authenticate the user endpoints and
    #: the SSE stream; ``None`` rejects every such request with 503.
    live_token_key: SecretStr | None = None
    #: Lifetime of a token minted by ``luna-triggers live token``, in seconds.
    live_token_ttl_s: int = Field(default=900, ge=1, le=24 * 3600)
    #: Seconds between SSE comment lines that keep proxies from closing an idle stream.
    live_heartbeat_s: float = Field(default=15.0, gt=0, le=300)
    #: Reconnection delay that the SSE ``retry:`` field sends to browsers, in milliseconds.
    live_retry_ms: int = Field(default=3000, ge=0, le=600_000)
    #: Events queued for one SSE connection before it is sent ``resync`` instead.
    live_queue_max: int = Field(default=100, ge=1, le=100_000)
    #: Events kept per user for ``Last-Event-ID`` replay.
    live_replay_max: int = Field(default=100, ge=1, le=10_000)
    #: Users whose replay buffers a gateway keeps; the least recently active go first.
    live_replay_users_max: int = Field(default=10_000, ge=1)
    #: Live records re-read per partition when a gateway starts, to fill the replay buffers.
    live_backfill_per_partition: int = Field(default=1000, ge=0)

    #: VAPID key pair (RFC 8292), as ``luna-triggers vapid generate`` prints
    #: it; without a private key the push sink records every push as failed.
    vapid_private_key: SecretStr | None = None
    vapid_public_key: str | None = None
    #: The ``sub`` claim: a ``mailto:`` or ``https:`` contact for push services.
    vapid_subject: str = Field(default="mailto:push@luna.invalid", pattern=r"^(mailto:|https://)\S+$")
    #: The ``TTL`` header: how long a push service keeps a message for an offline device, in seconds.
    push_ttl_s: int = Field(default=24 * 3600, ge=0, le=28 * 24 * 3600)
    #: Upper bound of the JSON payload before encryption, in bytes; the hard
    #: limit with aes128gcm is 3993, and about 3000 is safe in practice.
    push_payload_max_bytes: int = Field(default=3000, ge=256, le=3993)
    #: Seconds before one request to a push service is abandoned and retried.
    push_timeout_s: float = Field(default=10.0, gt=0, le=120)
    #: Attempts per device before a push is recorded as failed.
    push_max_attempts: int = Field(default=5, ge=1, le=20)
    #: Maximum wait between attempts. A larger ``Retry-After`` fails the push.
    push_retry_max_delay_s: float = Field(default=60.0, gt=0, le=3600)
    #: Hosts that may be plain http and loopback or private: only for a local
    #: test push service. Empty in production, so every endpoint must be a
    #: public https URL.
    push_allowed_test_hosts: list[str] = Field(default_factory=list)

    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"

    @property
    def app_id(self) -> str:
        return f"{self.topic_prefix}worker"

    def webhook_url(self, hook_id: str) -> str:
        """Return the URL an external sender calls for ``hook_id``."""
        base = self.gateway_public_url.rstrip("/") or f"http://{self.gateway_host}:{self.gateway_port}"
        return f"{base}/api/triggers/webhook/{hook_id}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read on first use."""
    env_file = _env_file()
    if env_file is not None:
        return Settings(_env_file=env_file)  # type: ignore[call-arg]
    return Settings()
