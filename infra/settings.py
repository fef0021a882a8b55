"""Process settings, read from the environment and `.env`, validated once at start, grouped by
concern (docs/operations.md lists every variable). Each group reads its own variables, so the
names users set stay flat (`PIPELINE_SMTP_HOST`, not a nested spelling)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.aggregates.budget import DEFAULT_GRACE_PERCENT
from domain.applications import BudgetPolicy
from domain.billing import DEFAULT_TOLERANCE_PERCENT, DEFAULT_TOLERANCE_USD, BillingTolerance
from infra.nats_tls import check_pod_url

DEFAULT_RUNPOD_API_URL = "https://api.runpod.io"  # the v2 OpenAPI's servers[0]; every path starts with /v2


class _Group(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)


class RuntimeSettings(_Group):
    """Where the database and NATS are (unset: start embedded ones), and how workers use them."""

    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    nats_url: str | None = Field(default=None, alias="NATS_URL")
    state_dir: Path = Field(default=Path(".state"), alias="PIPELINE_STATE_DIR")
    connect_timeout_s: float = Field(default=5.0, gt=0, le=120, alias="PIPELINE_CONNECT_TIMEOUT")
    relay_batch: int = Field(default=1000, ge=1, le=100_000, alias="PIPELINE_RELAY_BATCH")
    relay_idle_poll_s: float = Field(default=0.05, gt=0, le=10, alias="PIPELINE_RELAY_POLL")
    consumer_max_deliver: int = Field(default=10, ge=2, le=1000, alias="PIPELINE_MAX_DELIVER")
    # Where nats-server reads its users (auth.conf) and writes nats.pid: set, pods get users of
    # their own (infra/natsauth.py). `pipeline up` sets it for the embedded server.
    nats_auth_dir: Path | None = Field(default=None, alias="PIPELINE_NATS_AUTH_DIR")
    # The CA pods verify NATS's certificate with (PEM file), for a NATS of your own; the embedded server's
    # is generated (docs/operations.md, "TLS for pods"). Unset: the system's trust store.
    nats_ca_file: Path | None = Field(default=None, alias="PIPELINE_NATS_CA_FILE")
    # Where the embedded nats-server listens (host:port). Default: 127.0.0.1 on a free port, or, when
    # PIPELINE_AGENT_NATS_URL names another machine, every interface on that URL's port, with TLS.
    nats_listen: str | None = Field(default=None, pattern=r"^[\w.:\[\]-]+:\d+$", alias="PIPELINE_NATS_LISTEN")
    seed_sample: bool = Field(default=True, alias="PIPELINE_SEED_SAMPLE")
    # Copies JetStream keeps of each stream, consumer and bucket: 1 on one server, 3 on a cluster
    # of three (one node may die). `pipeline up --nats-cluster 3` sets it for its workers.
    nats_replicas: int = Field(default=1, ge=1, le=5, alias="PIPELINE_NATS_REPLICAS")
    # Without NATS_URL: how many embedded nats-servers form the cluster (`pipeline up --nats-cluster N`).
    nats_cluster: int = Field(default=1, ge=1, le=5, alias="PIPELINE_NATS_CLUSTER")
    # How long a leader (relay, a projection, provisioning, …) may go unheard before PostgreSQL ends
    # its session and a standby takes over (infra/leadership.py).
    lease_s: float = Field(default=5.0, ge=1, le=120, alias="PIPELINE_LEASE_S")
    # This process's name in /health's list of instances (default: host and pid).
    instance: str = Field(default="", max_length=100, alias="PIPELINE_INSTANCE")

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        return _check_url(value, ("postgresql", "postgres"), "DATABASE_URL")

    @field_validator("nats_url")
    @classmethod
    def _check_nats_url(cls, value: str | None) -> str | None:
        return _check_url(value, ("nats", "tls"), "NATS_URL")


class WebSettings(_Group):
    host: str = Field(default="127.0.0.1", alias="PIPELINE_WEB_HOST")
    port: int = Field(default=8000, ge=1, le=65535, alias="PIPELINE_WEB_PORT")
    # Where links in notifications and shared pages point (default: this listener).
    public_url: str = Field(default="", pattern=r"^(https?://.+)?$", alias="PIPELINE_PUBLIC_URL")
    # Behind a proxy that authenticates users: trust its X-Pipeline-User / X-Pipeline-Role headers
    # (instead of sign-in; only where nothing else can reach the web process).
    trust_identity_headers: bool = Field(default=False, alias="PIPELINE_TRUST_IDENTITY_HEADERS")
    # The session cookie's Secure flag: auto = when the request came over HTTPS (docs/web.md).
    cookie_secure: Literal["auto", "always", "never"] = Field(default="auto", alias="PIPELINE_COOKIE_SECURE")
    # `pipeline up` on a database with no users creates `admin` with this password (else a random one,
    # printed once and written to $PIPELINE_STATE_DIR/admin-password).
    admin_password: SecretStr = Field(default=SecretStr(""), alias="PIPELINE_ADMIN_PASSWORD")

    @property
    def public_base_url(self) -> str:
        """Where links in notifications point: PIPELINE_PUBLIC_URL, else this web listener."""
        return self.public_url.rstrip("/") or f"http://{self.host}:{self.port}"


class BudgetSettings(_Group):
    team: str = Field(default="default", min_length=1, alias="PIPELINE_TEAM")
    time_zone: str = Field(default="UTC", alias="PIPELINE_TIME_ZONE")
    default_limit: Decimal = Field(default=Decimal(500), ge=0, alias="PIPELINE_BUDGET_LIMIT")
    grace_percent: Decimal = Field(default=DEFAULT_GRACE_PERCENT, ge=0, le=100, alias="PIPELINE_BUDGET_GRACE")
    # A job whose provider bill differs from our ledger by more than the larger of these is flagged (/budget).
    billing_tolerance_usd: Decimal = Field(default=DEFAULT_TOLERANCE_USD, ge=0, alias="PIPELINE_BILLING_TOLERANCE_USD")
    billing_tolerance_percent: Decimal = Field(default=DEFAULT_TOLERANCE_PERCENT, ge=0, le=100,
                                               alias="PIPELINE_BILLING_TOLERANCE_PERCENT")

    @field_validator("time_zone")
    @classmethod
    def _check_time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    def policy(self) -> BudgetPolicy:
        return BudgetPolicy(self.team, self.time_zone, self.default_limit, self.grace_percent)

    def billing_tolerance(self) -> BillingTolerance:
        return BillingTolerance(self.billing_tolerance_usd, self.billing_tolerance_percent)


class AgentSettings(_Group):
    """Pods, the queue and what the GPU agent in each pod is told."""

    # The pod provider; RunPod's settings (docs/operations.md, "RunPod provider") matter only for "runpod".
    pod_provider: Literal["local", "runpod"] = Field(default="local", alias="PIPELINE_POD_PROVIDER")
    base_model: str = Field(default="tiny", min_length=1, alias="PIPELINE_AGENT_BASE_MODEL")
    # Load the base model in 4-bit (QLoRA). Unset: yes for a hub model, no for the tiny one.
    qlora: bool | None = Field(default=None, alias="PIPELINE_AGENT_QLORA")
    # Reads gated hub models (meta-llama/…): passed to pods as HF_TOKEN, nowhere else.
    hf_token: SecretStr = Field(default=SecretStr(""), alias="PIPELINE_HF_TOKEN")
    # The GPU's memory the pre-flight check judges a configuration against (an H100: 80 GB).
    gpu_memory_gb: float = Field(default=80.0, gt=0, le=4096, alias="PIPELINE_GPU_MEMORY_GB")
    max_steps: int = Field(default=-1, ge=-1, alias="PIPELINE_AGENT_MAX_STEPS")
    checkpoint_every: int = Field(default=100, ge=1, alias="PIPELINE_AGENT_CHECKPOINT_EVERY")
    threads: int = Field(default=1, ge=1, le=64, alias="PIPELINE_AGENT_THREADS")
    # The NATS URL pods connect to (RunPod pods need a public address); default: NATS_URL.
    pod_nats_url: str | None = Field(default=None, alias="PIPELINE_AGENT_NATS_URL")
    max_running: int = Field(default=3, ge=1, le=1000, alias="PIPELINE_MAX_RUNNING")
    max_queued: int = Field(default=10, ge=0, le=10_000, alias="PIPELINE_MAX_QUEUED")
    provisioning_retry_s: float = Field(default=300.0, gt=0, alias="PIPELINE_PROVISIONING_RETRY_S")
    provisioning_window_s: float = Field(default=3600.0, gt=0, alias="PIPELINE_PROVISIONING_WINDOW_S")
    heartbeat_timeout_s: float = Field(default=120.0, gt=0, alias="PIPELINE_HEARTBEAT_TIMEOUT")

    @property
    def quantized(self) -> bool:
        return self.qlora if self.qlora is not None else self.base_model != "tiny"


class RunPodSettings(_Group):
    """RunPod's REST API v2 (docs/operations.md, "RunPod provider")."""

    api_key: str = Field(default="", validation_alias=AliasChoices("PIPELINE_RUNPOD_API_KEY", "RUNPOD_API_KEY"))
    image: str = Field(default="", alias="PIPELINE_RUNPOD_IMAGE")
    gpu_type_id: str = Field(default="NVIDIA H100 PCIe", min_length=1, alias="PIPELINE_RUNPOD_GPU_TYPE")
    cloud_type: Literal["SECURE", "COMMUNITY"] = Field(default="SECURE", alias="PIPELINE_RUNPOD_CLOUD_TYPE")
    # Preferred data centers (comma-separated ids, e.g. "US-KS-2,EU-RO-1"); empty: RunPod's choice, or the volume's.
    data_centers: str = Field(default="", pattern=r"^[\w\-, ]*$", alias="PIPELINE_RUNPOD_DATA_CENTERS")
    # The network volume that caches base models for every pod (found or created by name); 0 GB: none.
    volume_gb: int = Field(default=200, ge=0, le=4096, alias="PIPELINE_RUNPOD_VOLUME_GB")
    volume_name: str = Field(default="lora-pipeline-models", min_length=1, alias="PIPELINE_RUNPOD_VOLUME_NAME")
    volume_path: str = Field(default="/runpod-volume", pattern=r"^/[\w./-]*$", alias="PIPELINE_RUNPOD_VOLUME_PATH")
    container_disk_gb: int = Field(default=40, ge=1, alias="PIPELINE_RUNPOD_CONTAINER_DISK_GB")
    api_url: str = Field(default=DEFAULT_RUNPOD_API_URL, pattern=r"^https?://", alias="PIPELINE_RUNPOD_API_URL")
    # How often our pods' states are read (one list call for all of them).
    poll_s: float = Field(default=5.0, gt=0, alias="PIPELINE_RUNPOD_POLL_S")
    price_ttl_s: float = Field(default=300.0, gt=0, alias="PIPELINE_RUNPOD_PRICE_TTL_S")
    # A pod's bill is read this long after it ended (RunPod bills every 5 minutes), then again up to N times.
    billing_delay_s: float = Field(default=600.0, ge=0, alias="PIPELINE_RUNPOD_BILLING_DELAY_S")
    billing_reads: int = Field(default=6, ge=1, le=100, alias="PIPELINE_RUNPOD_BILLING_READS")

    def preferred_data_centers(self) -> list[str]:
        return [dc.strip() for dc in self.data_centers.split(",") if dc.strip()]


class NotificationSettings(_Group):
    """Email, Slack and signed links (docs/notifications.md): a channel left unset is recorded as
    skipped, never failed."""

    smtp_host: str = Field(default="", alias="PIPELINE_SMTP_HOST")
    smtp_port: int = Field(default=587, ge=1, le=65535, alias="PIPELINE_SMTP_PORT")
    smtp_user: str = Field(default="", alias="PIPELINE_SMTP_USER")
    smtp_password: SecretStr = Field(default=SecretStr(""), alias="PIPELINE_SMTP_PASSWORD")
    smtp_tls: Literal["starttls", "ssl", "none"] = Field(default="starttls", alias="PIPELINE_SMTP_TLS")
    notify_from: str = Field(default="LoRA Pipeline <lora-pipeline@localhost>", min_length=3,
                             alias="PIPELINE_NOTIFY_FROM")
    notify_timeout_s: float = Field(default=10.0, gt=0, le=120, alias="PIPELINE_NOTIFY_TIMEOUT")
    slack_webhook_url: str = Field(default="", pattern=r"^(https?://.+)?$", alias="PIPELINE_SLACK_WEBHOOK_URL")
    # Signs approve / deny links and share links; without it there are none.
    approval_secret: SecretStr = Field(default=SecretStr(""), alias="PIPELINE_APPROVAL_SECRET")
    approval_ttl_h: float = Field(default=72.0, gt=0, le=24 * 30, alias="PIPELINE_APPROVAL_TTL_H")
    digest_hour: int = Field(default=8, ge=0, le=23, alias="PIPELINE_DIGEST_HOUR")
    # Outgoing webhooks (docs/notifications.md, "Webhooks"): the key their signing secrets are sealed
    # under (unset: $PIPELINE_STATE_DIR/webhook.key), the first retry's delay (each next one 4 × longer,
    # at most 6 h), attempts before a delivery is given up, and each attempt's timeout.
    webhook_key: SecretStr = Field(default=SecretStr(""), alias="PIPELINE_WEBHOOK_KEY")
    webhook_retry_s: float = Field(default=5.0, gt=0, le=3600, alias="PIPELINE_WEBHOOK_RETRY_S")
    webhook_attempts: int = Field(default=10, ge=1, le=50, alias="PIPELINE_WEBHOOK_ATTEMPTS")
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=120, alias="PIPELINE_WEBHOOK_TIMEOUT")

    @field_validator("approval_secret")
    @classmethod
    def _check_approval_secret(cls, value: SecretStr) -> SecretStr:
        if 0 < len(value.get_secret_value()) < 16:
            raise ValueError("PIPELINE_APPROVAL_SECRET must be at least 16 characters")
        return value

    @field_validator("webhook_key")
    @classmethod
    def _check_webhook_key(cls, value: SecretStr) -> SecretStr:
        if 0 < len(value.get_secret_value()) < 32:
            raise ValueError("PIPELINE_WEBHOOK_KEY must be at least 32 characters")
        return value


class JudgeSettings(_Group):
    """The model judge of generated replies (FR6.2.1, FR6.4.1; docs/quality-validation.md, "The model judge"):
    any OpenAI-compatible chat-completions endpoint, a hosted model or the team's own vLLM. No URL: no model
    judge (people score the replies on the review page). The key is a secret: it reaches the judge's
    Authorization header and nothing else (never a pod, an event, a log line or a page)."""

    url: str = Field(default="", pattern=r"^(https?://.+)?$", alias="PIPELINE_JUDGE_URL")  # e.g. http://vllm:8000/v1
    model: str = Field(default="", max_length=200, alias="PIPELINE_JUDGE_MODEL")
    api_key: SecretStr = Field(default=SecretStr(""), alias="PIPELINE_JUDGE_API_KEY")
    # What judging costs, charged to each job's budget line: USD per million prompt / completion tokens.
    input_price: Decimal = Field(default=Decimal(0), ge=0, le=10_000, alias="PIPELINE_JUDGE_INPUT_PRICE")
    output_price: Decimal = Field(default=Decimal(0), ge=0, le=10_000, alias="PIPELINE_JUDGE_OUTPUT_PRICE")
    timeout_s: float = Field(default=60.0, gt=0, le=600, alias="PIPELINE_JUDGE_TIMEOUT")
    # Per request, over 429s, 5xx and dropped connections; a Retry-After longer than max_wait_s stops the round.
    max_attempts: int = Field(default=6, ge=1, le=20, alias="PIPELINE_JUDGE_MAX_ATTEMPTS")
    max_wait_s: float = Field(default=120.0, gt=0, le=3600, alias="PIPELINE_JUDGE_MAX_WAIT")
    # A malformed answer is asked again this many times; then the item is marked unscored.
    malformed_retries: int = Field(default=2, ge=0, le=10, alias="PIPELINE_JUDGE_MALFORMED_RETRIES")
    # How often evaluated jobs are looked for, and how long a job waits after the judge stopped (down, refused).
    poll_s: float = Field(default=5.0, gt=0, le=3600, alias="PIPELINE_JUDGE_POLL_S")
    retry_s: float = Field(default=300.0, gt=0, le=86_400, alias="PIPELINE_JUDGE_RETRY_S")

    @property
    def configured(self) -> bool:
        return bool(self.url and self.model)

    @model_validator(mode="after")
    def _check_pair(self) -> JudgeSettings:
        if bool(self.url) != bool(self.model):
            raise ValueError("the model judge needs both PIPELINE_JUDGE_URL and PIPELINE_JUDGE_MODEL")
        return self


class TestFaults(_Group):
    """Fault injection for tests and demos (docs/operations.md); empty in production."""

    # A fault injected into every job's first pod attempt (gpu_agent faults, e.g. sigkill_at_step:8).
    agent: str = Field(default="", alias="PIPELINE_AGENT_FAULT")
    # A fault of the control plane's own workers (e.g. the relay's).
    control_plane: str = Field(default="", alias="PIPELINE_FAULT")


GROUPS: dict[str, type[_Group]] = {
    "runtime": RuntimeSettings, "web": WebSettings, "budget": BudgetSettings, "agent": AgentSettings,
    "runpod": RunPodSettings, "notifications": NotificationSettings, "judge": JudgeSettings, "faults": TestFaults,
}


class Settings(BaseModel):
    """Everything a process needs to know; an unset URL means "start an embedded server"."""

    runtime: RuntimeSettings
    web: WebSettings
    budget: BudgetSettings
    agent: AgentSettings
    runpod: RunPodSettings
    notifications: NotificationSettings
    judge: JudgeSettings
    faults: TestFaults

    @model_validator(mode="after")
    def _check_runpod(self) -> Settings:
        if self.agent.pod_provider == "runpod" and not (self.runpod.api_key and self.runpod.image):
            raise ValueError("PIPELINE_POD_PROVIDER=runpod needs RUNPOD_API_KEY and PIPELINE_RUNPOD_IMAGE")
        if self.agent.pod_provider == "runpod" and not self.agent.pod_nats_url:
            raise ValueError("PIPELINE_POD_PROVIDER=runpod needs PIPELINE_AGENT_NATS_URL: where RunPod's pods reach "
                             "NATS over the internet, tls://host:port (docs/operations.md, \"TLS for pods\")")
        if self.agent.pod_nats_url:
            check_pod_url(self.agent.pod_nats_url, "PIPELINE_AGENT_NATS_URL")
        return self

    def budget_policy(self) -> BudgetPolicy:
        return self.budget.policy()


def _check_url(value: str | None, schemes: tuple[str, ...], name: str) -> str | None:
    """One URL, or several: NATS_URL lists a cluster's servers separated by commas (clients fail
    over between them); a PostgreSQL URL may name several hosts (`postgresql://h1:5432,h2:5432/db?
    target_session_attrs=read-write`: libpq connects to the one that takes writes)."""
    if value is None or value.strip() == "":
        return None
    if schemes[0] == "postgresql":
        _check_one_url(value, schemes, name, several_hosts=True)
        return value
    urls = [url.strip() for url in value.split(",")]
    for place, url in enumerate(urls, 1):
        where = name if len(urls) == 1 else f"{name} (server {place} of {len(urls)})"
        _check_one_url(url, schemes, where)
    return ",".join(urls)


def _check_one_url(value: str, schemes: tuple[str, ...], name: str, several_hosts: bool = False) -> None:
    try:
        parts = urlsplit(value)
        hosts = parts.netloc.rpartition("@")[2].split(",") if several_hosts else [parts.netloc.rpartition("@")[2]]
        for host in hosts:
            urlsplit(f"//{host}").port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ValueError(f"{name} is not a URL ({exc})") from None
    if parts.scheme not in schemes:
        raise ValueError(f"{name} must start with {' or '.join(s + '://' for s in schemes)}")
    named = all(urlsplit(f"//{host}").hostname for host in hosts)
    if parts.scheme.startswith("postgres") and not (named or "host=" in parts.query):
        raise ValueError(f"{name} names no host")
    if parts.scheme in ("nats", "tls") and not named:
        raise ValueError(f"{name} names no host")


class SettingsError(Exception):
    """A setting is invalid; the message is one line, fit for a terminal."""


def load_settings(**overrides: Any) -> Settings:
    """Reads and validates settings; raises SettingsError with a one-line reason. An override is
    named by its field (`database_url`) or its environment variable (`DATABASE_URL`)."""
    try:
        # Any: each group goes to its own field of Settings, which pydantic checks.
        groups: dict[str, Any] = {name: cls(**_overrides_for(cls, overrides)) for name, cls in GROUPS.items()}
        return Settings(**groups)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in GROUPS) or "settings"
        message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        raise SettingsError(f"invalid setting {where}: {message}") from None


def _overrides_for(cls: type[_Group], overrides: dict[str, Any]) -> dict[str, Any]:
    unknown = [key for key in overrides if not any(key in _names(group) for group in GROUPS.values())]
    if unknown:
        raise TypeError(f"unknown settings: {', '.join(unknown)}")
    names = _names(cls)
    return {names[key]: value for key, value in overrides.items() if key in names}


def _names(cls: type[_Group]) -> dict[str, str]:
    """Each name an override may use for a field of `cls`: the field's own and its variables'."""
    names = {}
    for field, info in cls.model_fields.items():
        names[field] = field
        if info.alias:
            names[info.alias] = field
        if isinstance(info.validation_alias, AliasChoices):
            names.update({str(choice): field for choice in info.validation_alias.choices})
    return names
