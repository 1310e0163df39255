"""One typed settings class, read from the environment and from `.env`.

Names are part of the operator contract (deployment files rely on them): do not rename.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the pipeline reads from its environment."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # --- infrastructure -------------------------------------------------------------------------
    database_url: str = Field(
        default="postgresql+psycopg://postgres@127.0.0.1:5432/cin7xero", alias="DATABASE_URL", repr=False
    )
    celery_broker_url: str = Field(default="redis://127.0.0.1:6379/0", alias="CELERY_BROKER_URL", repr=False)
    # Shared rate-limit counters and locks. Empty means "single process" (the demo): limits are then
    # enforced in-process only.
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", alias="REDIS_URL", repr=False)

    # --- tenant identity --------------------------------------------------------------------------
    # One deployment will serve many (Cin7 account, Xero organisation) pairs; today the environment
    # describes one, stored in the ledger under this key.
    tenant_key: str = Field(default="default", alias="TENANT_KEY")

    # --- Cin7 Core --------------------------------------------------------------------------------
    cin7_api_url: str = Field(default="https://inventory.dearsystems.com/ExternalApi/v2", alias="CIN7_API_URL")
    cin7_account_id: str = Field(default="", alias="CIN7_ACCOUNT_ID")
    cin7_application_key: SecretStr = Field(default=SecretStr(""), alias="CIN7_APPLICATION_KEY")
    cin7_page_size: int = Field(default=1000, alias="CIN7_PAGE_SIZE", ge=1, le=1000)
    # Rows that share the watermark's timestamp may still be arriving when we read: re-read this much.
    cin7_poll_overlap_seconds: int = Field(default=300, alias="CIN7_POLL_OVERLAP_SECONDS", ge=0)
    cin7_initial_lookback_days: int = Field(default=30, alias="CIN7_INITIAL_LOOKBACK_DAYS", ge=0)
    # The cutover: the live sync handles documents dated on or after it; earlier ones are migrated
    # (`cin7xero migrate`). When set, the first poll reads from it instead of the lookback.
    sync_start_date: date | None = Field(default=None, alias="SYNC_START_DATE")
    # Off by default: many businesses already enter supplier bills in Xero (by hand or a bill inbox),
    # and a second copy of every bill is worse than none. Turned on, suppliers and purchases sync too.
    sync_purchases: bool = Field(default=False, alias="SYNC_PURCHASES")
    cin7_calls_per_minute: int = Field(default=60, alias="CIN7_CALLS_PER_MINUTE", ge=1)
    # Of each minute's calls, this many are kept for list reads (polls, reconciliation's listing): a
    # burst of webhook-driven detail reads takes the rest at once but never these; bulk detail reads
    # (migration, reconciliation) leave as many again for the live sync's.
    cin7_reserved_calls: int = Field(default=10, alias="CIN7_RESERVED_CALLS", ge=0)
    # 0: calls go as soon as the window has room. N > 0: at most N at once, the rest spread evenly over
    # the minute (gentler on Cin7, slower for a burst of webhooks).
    cin7_burst_calls: int = Field(default=0, alias="CIN7_BURST_CALLS", ge=0)
    # A poll sends its changed sales this many to a message (one Celery message per sale cost more CPU
    # than the sale's own work). 1: one message per sale.
    cin7_fetch_group_size: int = Field(default=10, alias="CIN7_FETCH_GROUP_SIZE", ge=1, le=100)
    # Cin7 throttles without Retry-After: this is how long we wait before trying again.
    cin7_throttle_wait_seconds: float = Field(default=15.0, alias="CIN7_THROTTLE_WAIT_SECONDS", ge=0)
    cin7_max_throttle_retries: int = Field(default=4, alias="CIN7_MAX_THROTTLE_RETRIES", ge=0)

    # --- Xero -------------------------------------------------------------------------------------
    xero_api_url: str = Field(default="https://api.xero.com/api.xro/2.0", alias="XERO_API_URL")
    xero_token_url: str = Field(default="https://identity.xero.com/connect/token", alias="XERO_TOKEN_URL")
    xero_connections_url: str = Field(default="https://api.xero.com/connections", alias="XERO_CONNECTIONS_URL")
    xero_authorize_url: str = Field(
        default="https://login.xero.com/identity/connect/authorize", alias="XERO_AUTHORIZE_URL"
    )
    xero_redirect_uri: str = Field(default="http://localhost:8765/xero/callback", alias="XERO_REDIRECT_URI")
    xero_scopes: str = Field(
        default="offline_access accounting.transactions accounting.contacts accounting.settings.read",
        alias="XERO_SCOPES",
    )
    xero_client_id: str = Field(default="", alias="XERO_CLIENT_ID")
    xero_client_secret: SecretStr = Field(default=SecretStr(""), alias="XERO_CLIENT_SECRET")
    xero_tenant_id: str | None = Field(default=None, alias="XERO_TENANT_ID")
    xero_batch_size: int = Field(default=50, alias="XERO_BATCH_SIZE", ge=1, le=50)
    # A write waits this long for company when fewer than a batch of documents are ready.
    xero_batch_wait_seconds: float = Field(default=0.25, alias="XERO_BATCH_WAIT_SECONDS", ge=0)
    # Xero's per-tenant minute: 60 calls. Tests and benchmarks compress the window against stand-ins.
    xero_calls_per_window: int = Field(default=60, alias="XERO_CALLS_PER_WINDOW", ge=1)
    xero_rate_window_seconds: float = Field(default=60.0, alias="XERO_RATE_WINDOW_SECONDS", gt=0)
    # Xero caps a request at 3.5 MB; batches are split below this many bytes of JSON.
    # Xero's daily call limit per organisation (the metrics and status show what is left of it today).
    xero_calls_per_day: int = Field(default=5000, alias="XERO_CALLS_PER_DAY", ge=1)
    xero_max_request_bytes: int = Field(default=3_000_000, alias="XERO_MAX_REQUEST_BYTES", gt=1000)
    xero_invoice_status: Literal["AUTHORISED", "DRAFT"] = Field(default="AUTHORISED", alias="XERO_INVOICE_STATUS")
    # Contact numbers and details go to Xero in full batches when no invoice is waiting, a part batch
    # once its oldest has waited CONTACT_PUSH_QUIET_SECONDS, and after the max delay even under load.
    contact_push_quiet_seconds: float = Field(default=5.0, alias="CONTACT_PUSH_QUIET_SECONDS", ge=0)
    contact_push_max_delay_seconds: float = Field(default=900.0, alias="CONTACT_PUSH_MAX_DELAY_SECONDS", ge=0)

    # --- mapping ----------------------------------------------------------------------------------
    mapping_rules_file: Path | None = Field(default=None, alias="MAPPING_RULES_FILE")

    # --- secrets at rest --------------------------------------------------------------------------
    # Fernet key (urlsafe base64, 32 bytes) that encrypts stored OAuth tokens. Empty: a key is derived
    # from XERO_CLIENT_SECRET so that a fresh install still never stores tokens in clear.
    token_encryption_key: SecretStr = Field(default=SecretStr(""), alias="TOKEN_ENCRYPTION_KEY")
    # Comma-separated Fernet keys, newest first: the newest encrypts, any decrypts, and a token read
    # under an older one is re-encrypted with the newest (rotate by prepending; drop the old one later).
    # Required before a refresh token (a standard app's `xero connect`) is stored.
    token_encryption_keys: SecretStr = Field(default=SecretStr(""), alias="TOKEN_ENCRYPTION_KEYS")

    # --- scheduling and retries -------------------------------------------------------------------
    poll_interval_seconds: float = Field(default=300.0, alias="POLL_INTERVAL_SECONDS", gt=0)
    # With STUCK_AFTER_SECONDS, how soon a lost message is sent again: a lease plus one interval.
    # How long a beat that died keeps its lock before a waiting beat takes over (RedBeat, in Redis).
    beat_lock_seconds: float = Field(default=30.0, alias="BEAT_LOCK_SECONDS", ge=3)
    sweep_interval_seconds: float = Field(default=30.0, alias="SWEEP_INTERVAL_SECONDS", gt=0)
    # The lease of a message in flight: a row sent this long ago and not done, whose queue has nothing
    # left waiting, lost its message (a SIGKILLed worker, a broker restarted empty) and is sent again.
    # Short, so that killed workers heal within two minutes; a duplicate is absorbed by the ledger.
    stuck_after_seconds: float = Field(default=60.0, alias="STUCK_AFTER_SECONDS", gt=0)
    max_attempts: int = Field(default=8, alias="MAX_ATTEMPTS", ge=1)
    retry_base_seconds: float = Field(default=5.0, alias="RETRY_BASE_SECONDS", gt=0)
    retry_cap_seconds: float = Field(default=900.0, alias="RETRY_CAP_SECONDS", gt=0)
    # Redis re-delivers an unacked message after this long: keep it above the longest task.
    broker_visibility_timeout_seconds: int = Field(default=3600, alias="BROKER_VISIBILITY_TIMEOUT_SECONDS")

    # --- alerts (issue: once per problem per window, never once per order) --------------------------
    # Comma-separated channels: log, slack, email.
    alert_channels: str = Field(default="log", alias="ALERT_CHANNELS")
    alert_window_seconds: float = Field(default=900.0, alias="ALERT_WINDOW_SECONDS", gt=0)
    alert_slack_webhook_url: SecretStr = Field(default=SecretStr(""), alias="ALERT_SLACK_WEBHOOK_URL")
    alert_smtp_host: str = Field(default="", alias="ALERT_SMTP_HOST")
    alert_smtp_port: int = Field(default=25, alias="ALERT_SMTP_PORT")
    alert_smtp_user: str = Field(default="", alias="ALERT_SMTP_USER")
    alert_smtp_password: SecretStr = Field(default=SecretStr(""), alias="ALERT_SMTP_PASSWORD")
    alert_smtp_starttls: bool = Field(default=False, alias="ALERT_SMTP_STARTTLS")
    alert_email_from: str = Field(default="cin7xero@localhost", alias="ALERT_EMAIL_FROM")
    # Comma-separated recipients.
    alert_email_to: str = Field(default="", alias="ALERT_EMAIL_TO")

    # --- Cin7 webhooks (Cin7 signs nothing: it sends the auth configured on the subscription) -----
    cin7_webhook_token: SecretStr = Field(default=SecretStr(""), alias="CIN7_WEBHOOK_TOKEN")
    cin7_webhook_user: str = Field(default="", alias="CIN7_WEBHOOK_USER")
    cin7_webhook_password: SecretStr = Field(default=SecretStr(""), alias="CIN7_WEBHOOK_PASSWORD")
    webhook_max_body_bytes: int = Field(default=1_000_000, alias="WEBHOOK_MAX_BODY_BYTES", gt=0)
    # Handled webhook events are kept this long (the inbox is an audit trail, not an archive).
    webhook_event_retention_days: float = Field(default=30.0, alias="WEBHOOK_EVENT_RETENTION_DAYS", gt=0)
    # A request head (line and headers) must arrive within this long, and be at most this large.
    webhook_head_timeout_seconds: float = Field(default=10.0, alias="WEBHOOK_HEAD_TIMEOUT_SECONDS", gt=0)
    webhook_max_header_bytes: int = Field(default=16_384, alias="WEBHOOK_MAX_HEADER_BYTES", ge=1024)
    # Open connections past which a request is answered 503; threads for the ledger writes.
    webhook_max_connections: int = Field(default=2048, alias="WEBHOOK_MAX_CONNECTIONS", ge=1)
    webhook_threads: int = Field(default=16, alias="WEBHOOK_THREADS", ge=1)

    # --- reconciliation ---------------------------------------------------------------------------
    reconcile_schedule: Literal["daily", "weekly"] = Field(default="daily", alias="RECONCILE_SCHEDULE")
    reconcile_lookback_days: int = Field(default=35, alias="RECONCILE_LOOKBACK_DAYS", ge=1)
    report_dir: Path = Field(default=Path("reports"), alias="REPORT_DIR")

    # --- logs --------------------------------------------------------------------------------------
    # json: one JSON object per line with the task, tenant and document (for log shippers); text: for a terminal.
    log_format: Literal["text", "json"] = Field(default="text", alias="LOG_FORMAT")

    # --- metrics (GET /metrics on the receiver, or cin7xero metrics serve) ---------------------------
    # A scrape reads the ledger and the broker at most this often; scrapes in between get the same figures.
    metrics_cache_seconds: float = Field(default=15.0, alias="METRICS_CACHE_SECONDS", ge=0)

    @field_validator("cin7_api_url", "xero_api_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def uses_redis(self) -> bool:
        """True when a shared Redis is configured (production); False for the single-process demo."""
        return self.redis_url.startswith(("redis://", "rediss://", "unix://"))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests and the demo call `get_settings.cache_clear()` after changing env."""
    return Settings()
