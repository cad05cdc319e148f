"""One ``Settings`` for nq-ray: ``NQ_`` env vars (nested with ``__``), an optional YAML file named by
``NQ_CONFIG_FILE`` with ``${VAR:-default}`` expansion, and validated runtime updates that are journaled.

Precedence, highest first: explicit arguments, environment, YAML file, defaults. An invalid value fails
at start-up with one ``ConfigError`` naming the key, the value and what is allowed.
"""

from __future__ import annotations

import json
import os
import re
import typing
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from nq_ray.errors import ConfigError, PathNotAllowedError
from nq_ray.logs import redact_url
from nq_ray.settings.events import EventSettings
from nq_ray.settings.llm import LLMConfig
from nq_ray.settings.propfirm import PropFirmSettings
from nq_ray.settings.risk import RiskLimits

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class YahooSettings(_Section):
    max_retries: int = Field(default=4, ge=0, le=10, description="retries on rate limits / transient errors")
    backoff_s: float = Field(default=1.0, ge=0, description="first back-off; doubles each retry")
    timeout_s: float = Field(default=30.0, gt=0)


class TradovateSettings(_Section):
    base_url: str = "https://demo.tradovateapi.com/v1"
    username: str | None = None
    password: SecretStr | None = None
    app_id: str = "nq-ray"
    app_version: str = "0.1"
    cid: int | None = None
    sec: SecretStr | None = None
    timeout_s: float = Field(default=20.0, gt=0)

    @property
    def configured(self) -> bool:
        return bool(self.username and self.password and self.cid and self.sec)


class DataSettings(_Section):
    data_dir: Path = Field(default=Path(".nq_data"), description="SQLite file, journals, cached files")
    default_source: str = Field(
        default="sample", description="sample | synthetic | yahoo | tradovate | csv:P"
    )
    default_symbol: str = "NQ"
    outlier_z: float = Field(default=3.0, gt=0, description="robust z-score (MAD) threshold for outliers")
    synthetic_seed: int = 7
    roots: list[Path] = Field(
        default_factory=list,
        description="directories whose csv:/parquet: files API and MCP callers may read; "
        "empty = data_dir and the bundled samples (the operator's CLI and config may name any path)",
    )
    yahoo: YahooSettings = Field(default_factory=YahooSettings)
    tradovate: TradovateSettings = Field(default_factory=TradovateSettings)

    def file_roots(self) -> list[Path]:
        """The directories (resolved) that API and MCP callers' ``csv:``/``parquet:`` files must be in:
        ``roots``, or ``data_dir`` and the bundled samples when it is empty."""
        roots = self.roots or [self.data_dir, SAMPLES_DIR]
        return [r.expanduser().resolve() for r in roots]


# The bundled sample bars (``source="sample"``), beside nq_ray/data/; a data root by default.
SAMPLES_DIR = Path(__file__).resolve().parent / "data" / "samples"


def confine_file(kind: str, path: str, roots: list[Path]) -> Path:
    """The file a caller named as ``csv:PATH``/``parquet:PATH``, resolved (symlinks followed, ``..``
    collapsed), when it lies inside one of ``roots``; a relative ``path`` names a file in the first root
    that has it (else in the first root).

    Anything else raises ONE ``PathNotAllowedError``, the same whether the file exists, is a directory
    or cannot be read, so a caller learns nothing about the server's files outside the roots."""
    refused = PathNotAllowedError(
        f"{kind}: paths must be under one of the configured data roots (data.roots); put the file in the "
        "data directory (data.data_dir) or ask the operator to add its directory to data.roots, "
        f"then name it as {kind}:<file name> (relative to a root) or by its full path there"
    )
    try:
        given = Path(path)
        if given.is_absolute():
            chosen = given
        else:  # the first root that holds that name (a link counts), else the first root
            candidates = [root / given for root in roots]
            chosen = next((c for c in candidates if os.path.lexists(c)), candidates[0] if roots else given)
        resolved = chosen.resolve()
    except (OSError, ValueError, RuntimeError):  # a NUL byte, a symlink loop, a name too long
        raise refused from None
    if not any(resolved.is_relative_to(root) for root in roots):
        raise refused
    return resolved


class StoreSettings(_Section):
    url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL; default sqlite+aiosqlite:///<data_dir>/nq_ray.db; "
        "postgresql+asyncpg://user:pw@host/db for PostgreSQL",
    )

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return v


class CacheSettings(_Section):
    url: str | None = Field(default=None, description="redis://host:port/db; unset = in-process cache")
    namespace: str = Field(default="nq", min_length=1)
    max_items: int = Field(default=512, gt=0, description="in-process cache capacity (LRU)")
    ttl_s: dict[str, int] = Field(
        default_factory=lambda: {
            "1m": 30,
            "2m": 60,
            "5m": 120,
            "15m": 300,
            "30m": 600,
            "1h": 900,
            "4h": 1800,
            "1d": 3600,
            "1wk": 6 * 3600,
        },
        description="time-to-live of cached bars by interval",
    )

    @field_validator("url")
    @classmethod
    def _redis(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// or rediss:// URL")
        return v


COMMISSION_PER_CONTRACT_USD = 2.25
SLIPPAGE_TICKS = 1


class FillCosts(BaseModel):
    """What a fill costs: THE one definition of trading costs and their defaults, for every backtest
    (Python ``BacktestConfig``, the MCP/REST tools, the agent backtest) and the paper broker.

    Defaults are what a retail futures trader pays and loses on a full-size contract such as NQ:

    - commission $2.25 per contract per side ($4.50 round turn), all-in: a discount broker's $0.25-1.29
      plus the CME exchange fee (about $1.38 for a non-member on E-mini Nasdaq), the NFA fee ($0.02) and
      clearing. Micros (MNQ, MES) cost about a quarter of that; set it per run or in settings.
    - slippage of one tick (NQ: 0.25 pt = $5) against you on every market and stop fill (limit fills,
      take-profits included, fill at their price).

    ``execution.commission_per_contract`` / ``execution.slippage_ticks`` (``NQ_EXECUTION__...`` or the
    YAML file) override them for the server's tools and paper broker; pass zeros explicitly to compare
    with a reference engine that has no costs.
    """

    model_config = ConfigDict(extra="forbid")

    commission_per_contract: float = Field(
        default=COMMISSION_PER_CONTRACT_USD,
        ge=0,
        le=1000,
        description="USD per contract per side, all-in (broker + exchange + NFA fees)",
    )
    slippage_ticks: float = Field(
        default=SLIPPAGE_TICKS, ge=0, le=100, description="ticks lost on every market and stop fill"
    )

    def costs(self) -> FillCosts:
        """Just the costs (a ``FillCosts``) of this model or of any model that extends it."""
        return FillCosts(
            commission_per_contract=self.commission_per_contract, slippage_ticks=self.slippage_ticks
        )


class ExecutionSettings(_Section, FillCosts):
    """Routing mode, plus the ``FillCosts`` of the paper broker and the default costs of every backtest."""

    mode: Literal["paper", "live"] = Field(default="paper", description="live routing needs credentials")
    confirm_live: bool = Field(default=False, description="must also be true before any live routing")


class RiskSettings(_Section):
    account_size_usd: float = Field(default=100_000.0, gt=0, description="paper account starting balance")
    margins: dict[str, float] = Field(
        default_factory=dict, description="per-symbol initial margin overrides in USD, e.g. {NQ: 36300}"
    )
    limits: RiskLimits = Field(default_factory=RiskLimits, description="the pre-trade gate's limits")


class ServeSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    api_replicas: int = Field(default=1, ge=1)
    replica_num_cpus: float = Field(default=0.1, gt=0, description="fractional CPUs so 2-core hosts schedule")
    cors_origins: list[str] = Field(
        default_factory=list, description="allowed browser origins; empty = no CORS"
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="largest request body in bytes (REST, MCP, config PATCH); a larger one gets a 413",
    )
    proxy_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Serve's internal HTTP proxy (HAProxy's fallback, Serve's 8500); unset = a free port",
    )
    replica_port_min: int | None = Field(
        default=None,
        ge=1024,
        le=65535 - 63,
        description="first of the 64 ports the API/UI replicas listen on behind HAProxy; "
        "unset = a free block",
    )
    haproxy_stats_port: int | None = Field(
        default=None, ge=1, le=65535, description="HAProxy's stats page, on 127.0.0.1; unset = off"
    )
    haproxy_metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="HAProxy's Prometheus exporter, on 127.0.0.1; unset = off"
    )
    dashboard: bool = Field(
        default=False, description="start the Ray dashboard with a local Ray (--dashboard)"
    )
    run_dir: Path | None = Field(
        default=None,
        description="per-instance runtime files (HAProxy config and admin socket, pid file), mode 0700; "
        "unset = <tmp>/nq-ray-<uid>/<port>",
    )


class ReplaySettings(_Section):
    """Which clock the runtime runs on (``nq_ray.market.clock``): the wall clock, or a market replay of
    the data source's bars. ``auto`` replays a historical source (sample, synthetic, csv:, parquet:) and
    runs a live one (yahoo, tradovate) on the wall clock."""

    clock: Literal["auto", "wall", "replay"] = Field(
        default="auto", description="auto | wall | replay (auto: replay historical sources)"
    )
    start: str | None = Field(
        default=None,
        description="replay start, exchange time (naive = New York), e.g. 2026-04-20T09:30; "
        "default: the open of the session `sessions_back` sessions before the source's last bar",
    )
    until: str | None = Field(default=None, description="replay end (default: the source's last bar)")
    speed: float = Field(default=60.0, gt=0, le=10_000, description="replay time per real second")
    sessions_back: int = Field(default=3, ge=1, le=250, description="default start: sessions before the end")
    symbols: list[str] = Field(
        default_factory=lambda: ["NQ", "ES"], description="symbols the replay releases"
    )
    interval: str = Field(default="5m", description="bar interval the replay releases")
    start_desk: bool = Field(default=True, description="start the desk loop when a new replay begins")


class ToolSettings(_Section):
    max_running_jobs: int = Field(default=8, ge=1, le=64, description="background jobs running at once")
    job_progress_every_s: float = Field(
        default=1.0, gt=0, le=60, description="how often a running job's progress is written to the store"
    )


class DeskScanSettings(_Section):
    """The desk's scanner (``scan_market``): when on, each loop round trades the top-ranked symbols."""

    enabled: bool = Field(
        default=False,
        description="before each loop round, scan symbols × timeframes and run cycles only for the top_n "
        "symbols with a positive score (confidence × trend alignment); off: the loop's own symbols",
    )
    symbols: list[str] = Field(
        default_factory=lambda: ["NQ", "ES"], min_length=1, max_length=8, description="symbols to scan"
    )
    timeframes: list[str] = Field(
        default_factory=lambda: ["5m", "1h"], min_length=1, max_length=4, description="timeframes to scan"
    )
    top_n: int = Field(default=1, ge=1, le=8, description="how many of the best-ranked symbols to trade")


class DeskSettings(_Section):
    """The trading desk's policies (``nq_ray.agents.service``)."""

    scan: DeskScanSettings = Field(default_factory=DeskScanSettings)

    halt_on_llm_loss: bool = Field(
        default=True,
        description="halt the desk when every LLM provider is down and one of them had answered since the "
        "desk started; false: the rules analyst decides, shown as degraded (as for never-reachable ones)",
    )
    risk_pct: float = Field(
        default=1.5,
        gt=0,
        le=10,
        description="the risk agent's budget per trade, % of equity (at $100k and 1.5%: one NQ contract "
        "fits a stop of up to 37.5 points)",
    )
    atr_multiple: float = Field(
        default=1.5,
        gt=0,
        le=10,
        description="the risk agent's stop distance in ATRs of the analysis interval",
    )
    entry_order: Literal["limit", "market"] = Field(
        default="limit",
        description="the execution agent's entry: a limit at the proposal's entry price, or a market order "
        "(the next bar's open plus slippage, as a backtest enters)",
    )


class OAuthSettings(_Section):
    """nq-ray as an OAuth 2.1 resource server for ``/mcp`` (docs/runtime.md#authorization): JWT access
    tokens from ``issuer``, verified against its JWKS, for ``resource`` (the audience). Unset issuer = off."""

    issuer: str | None = Field(default=None, description="the authorization server's issuer (the iss claim)")
    jwks_uri: str | None = Field(default=None, description="the issuer's JWKS (public signing keys)")
    resource: str | None = Field(
        default=None,
        description="canonical URL of this MCP endpoint, e.g. https://nq.example.com/mcp (RFC 8707/9728)",
    )
    audience: list[str] = Field(
        default_factory=list, description="accepted aud values; empty = the resource URL alone"
    )
    authorization_servers: list[str] = Field(
        default_factory=list, description="advertised in the resource metadata; empty = [issuer]"
    )
    algorithm: str = Field(default="RS256", description="the JWS algorithm the issuer signs with")
    read_scope: str = Field(
        default="read", min_length=1, description="needed for every MCP request and the read tools"
    )
    trade_scope: str = Field(
        default="trade", min_length=1, description="needed as well for the execution tools (orders)"
    )
    jwks_refresh_s: float = Field(
        default=30.0, ge=0, le=86400, description="least seconds between JWKS fetches for an unknown key id"
    )

    @field_validator("issuer", "jwks_uri", "resource", mode="before")
    @classmethod
    def _blank_is_none(cls, v: Any) -> Any:
        return None if isinstance(v, str) and not v.strip() else v

    @model_validator(mode="after")
    def _complete(self) -> OAuthSettings:
        if self.issuer is None:
            return self
        missing = [k for k in ("jwks_uri", "resource") if getattr(self, k) is None]
        if missing:
            raise ValueError(
                f"mcp.oauth.issuer is set, so mcp.oauth.{' and mcp.oauth.'.join(missing)} must be too"
            )
        for key in ("issuer", "jwks_uri", "resource"):
            url: str = getattr(self, key)
            if not url.startswith(("https://", "http://")):
                raise ValueError(f"mcp.oauth.{key} must be an http(s) URL, not {url!r}")
        if "#" in self.resource or "?" in self.resource:  # type: ignore[operator]
            raise ValueError("mcp.oauth.resource must not have a query or a fragment (RFC 8707)")
        if self.read_scope == self.trade_scope:
            raise ValueError("mcp.oauth.read_scope and mcp.oauth.trade_scope must differ")
        return self

    @property
    def enabled(self) -> bool:
        return self.issuer is not None


Toolset = Literal["data", "analysis", "risk", "execution", "backtest", "agents", "calendar"]
TOOLSETS: tuple[Toolset, ...] = typing.get_args(Toolset)
"""The MCP toolsets: every tool belongs to one (``nq_ray.tools.registry.ToolSpec.toolset``)."""


class MCPSettings(_Section):
    path: str = "/mcp"
    auth_token: SecretStr | None = Field(
        default=None, description="bearer token; unset (or empty/blank) = no auth, loopback only"
    )
    stateless_http: bool = True
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="browser origins allowed to call /mcp besides loopback ones (and no Origin); '*' = any",
    )
    oauth: OAuthSettings = Field(default_factory=OAuthSettings)

    toolsets: list[Toolset] = Field(
        default_factory=lambda: list(TOOLSETS),
        min_length=1,
        description="the toolsets the MCP server exposes (stdio and HTTP): data, analysis, risk, execution, "
        "backtest, agents, calendar; default all. A tool outside them is unknown to MCP clients",
    )
    read_only: bool = Field(
        default=False,
        description="expose only read-only tools (no place_order, manage_position): a research server",
    )

    @field_validator("toolsets")
    @classmethod
    def _no_repeats(cls, v: list[Toolset]) -> list[Toolset]:
        return list(dict.fromkeys(v))

    @field_validator("auth_token", mode="before")
    @classmethod
    def _blank_is_none(cls, v: Any) -> Any:
        """An empty or blank token is no token (``NQ_MCP__AUTH_TOKEN=`` must not pass for one)."""
        raw = v.get_secret_value() if isinstance(v, SecretStr) else v
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return None
        return v


class RaySettings(_Section):
    """Ray as nq-ray starts it (a local Ray: no ``RAY_ADDRESS``) and joins it (``nq_ray.runtime.cluster``)."""

    auth: Literal["token", "disabled"] = Field(
        default="token",
        description="Ray token authentication for a Ray nq-ray starts; a cluster you join keeps its own",
    )
    token_path: Path | None = Field(
        default=None,
        description="the cluster token file (0600); default <data_dir>/ray_auth_token, made on first start",
    )
    host: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="node IP of a local Ray: loopback keeps every Ray port on 127.0.0.1; others need auth",
    )
    port: int = Field(default=0, ge=0, le=65535, description="GCS port of a local Ray; 0 = a free port")
    dashboard_port: int = Field(default=0, ge=0, le=65535, description="Ray dashboard port; 0 = a free port")
    metrics_export_port: int = Field(
        default=0, ge=0, le=65535, description="Prometheus port of a local Ray's node; 0 = a free port"
    )
    connect_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=120,
        description="how long joining waits for the cluster at RAY_ADDRESS to answer",
    )


class Settings(BaseSettings):
    """Every setting nq-ray reads, validated as a whole."""

    model_config = SettingsConfigDict(
        env_prefix="NQ_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_assignment=True,
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    data: DataSettings = Field(default_factory=DataSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    execution: ExecutionSettings = Field(default_factory=ExecutionSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    risk: RiskSettings = Field(default_factory=RiskSettings)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    mcp: MCPSettings = Field(default_factory=MCPSettings)
    tools: ToolSettings = Field(default_factory=ToolSettings)
    desk: DeskSettings = Field(default_factory=DeskSettings)
    ray: RaySettings = Field(default_factory=RaySettings)
    replay: ReplaySettings = Field(default_factory=ReplaySettings)
    events: EventSettings = Field(default_factory=EventSettings)
    propfirm: PropFirmSettings = Field(default_factory=PropFirmSettings)

    @model_validator(mode="after")
    def _serve_llm_follows_serve(self) -> Settings:
        """The default ``serve`` LLM provider is on this instance's own host and port."""
        self.llm.follow_serve(self.serve.host, self.serve.port)
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls), file_secret_settings)

    @property
    def store_url(self) -> str:
        """The effective database URL (the embedded SQLite file unless ``store.url`` is set)."""
        return self.store.url or f"sqlite+aiosqlite:///{self.data.data_dir.resolve() / 'nq_ray.db'}"

    def redacted(self) -> dict[str, Any]:
        """A JSON-able dump with every secret shown as ``**********`` and every URL's password as
        ``***`` (``store.url``, ``cache.url``, provider URLs)."""
        out: dict[str, Any] = _redact_urls(self.model_dump(mode="json"))  # SecretStr dumps as ******
        return out

    def merged(self, patch: dict[str, Any]) -> Settings:
        """A new, validated ``Settings`` with ``patch`` merged in (``ConfigError`` otherwise); no journal."""
        return _build(_deep_merge(self.model_dump(mode="python"), patch), from_env=False)

    def update(self, patch: dict[str, Any], *, journal: Path | None = None, actor: str = "api") -> Settings:
        """A new ``Settings`` with ``patch`` merged in. The whole merged result is validated before it
        takes effect (``ConfigError`` otherwise, and ``self`` is unchanged); accepted updates are appended
        to the journal (``<data_dir>/config_journal.jsonl``) with secrets redacted."""
        new = self.merged(patch)
        path = journal or (new.data.data_dir / "config_journal.jsonl")
        path.parent.mkdir(parents=True, exist_ok=True)
        entry = {
            "at": datetime.now(UTC).isoformat(),
            "actor": actor,
            "patch": redact(patch),
        }
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, default=str) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return new


# What ``PATCH /api/config`` may change on a running system (``None``: anything below that key).
# Everything else (store, cache, ports, tokens, data_dir, execution mode) needs a restart.
LIVE_KEYS: dict[str, Any] = {
    "risk": {"limits": None, "margins": None},
    "llm": {
        "providers": {
            "enabled",
            "priority",
            "task_priorities",
            "timeout_s",
            "max_retries",
            "max_concurrency",
        },
        "deadline_s": None,
        "load_balancing": None,
        "health_timeout_s": None,
        "breaker": None,
    },
    "data": {"default_source": None, "default_symbol": None, "outlier_z": None, "yahoo": None},
    "tools": None,
    "propfirm": {"pack": None},  # the live account's rule pack: in force for the next order
}


def live_patch(settings: Settings, patch: Any) -> dict[str, Any]:
    """Check a JSON merge patch (RFC 7396) against what may change live and return it in the form
    ``Settings.update`` merges: ``llm.providers`` is patched by provider name
    (``{"llm": {"providers": {"openai": {"enabled": false}}}}``) and becomes the whole list. ``ConfigError``
    (with ``errors``: key, value, allowed) lists every refused key; nothing is applied here."""
    if not isinstance(patch, dict) or not patch:
        raise ConfigError(
            "the patch must be a non-empty JSON object of sections, e.g. "
            '{"risk": {"limits": {"max_contracts_per_symbol": 2}}}',
            errors=[{"key": "", "value": repr(patch)[:80], "allowed": "a non-empty JSON object"}],
        )
    errors: list[dict[str, str]] = []

    def walk(node: Any, allowed: Any, path: str) -> None:
        if allowed is None:
            return
        if not isinstance(node, dict):
            errors.append({"key": path, "value": repr(node)[:80], "allowed": "a JSON object"})
            return
        for k, v in node.items():
            key = f"{path}.{k}" if path else str(k)
            if isinstance(allowed, dict):
                if k not in allowed:
                    known = k in _known_keys(path)
                    why = (
                        "not changeable while running (restart with the new value)"
                        if known
                        else "unknown key"
                    )
                    errors.append(
                        {
                            "key": key,
                            "value": repr(v)[:80],
                            "allowed": f"{why}; live: {_live_list(path, allowed)}",
                        }
                    )
                    continue
                walk(v, allowed[k], key)
            else:  # llm.providers: {name: {field: value}}
                walk_provider(k, v, allowed, key)

    def walk_provider(name: str, v: Any, fields: set[str], key: str) -> None:
        names = [p.name for p in settings.llm.providers]
        if name not in names:
            errors.append({"key": key, "value": repr(v)[:80], "allowed": f"a configured provider: {names}"})
            return
        if not isinstance(v, dict):
            errors.append({"key": key, "value": repr(v)[:80], "allowed": "a JSON object"})
            return
        for f, x in v.items():
            if f not in fields:
                errors.append(
                    {"key": f"{key}.{f}", "value": repr(x)[:80], "allowed": f"one of {sorted(fields)}"}
                )

    walk(patch, LIVE_KEYS, "")
    source = (patch.get("data") or {}).get("default_source") if isinstance(patch.get("data"), dict) else None
    kind, _, arg = source.partition(":") if isinstance(source, str) else ("", "", "")
    if kind in ("csv", "parquet"):  # a file named over the API: inside the data roots, like the tools'
        try:
            confine_file(kind, arg, settings.data.file_roots())
        except PathNotAllowedError as exc:
            errors.append({"key": "data.default_source", "value": repr(source)[:80], "allowed": exc.message})
    if errors:
        raise ConfigError(
            "refused: " + "; ".join(f"{e['key']}: {e['allowed']}" for e in errors[:5]), errors=errors
        )
    out = {k: v for k, v in patch.items()}
    providers = (patch.get("llm") or {}).get("providers")
    if providers:
        rows = [p.model_dump(mode="python") for p in settings.llm.providers]
        for row in rows:
            row.update(providers.get(row["name"], {}))
        out["llm"] = {**patch["llm"], "providers": rows}
    return out


def _known_keys(path: str) -> set[str]:
    model: Any = Settings
    for part in [p for p in path.split(".") if p]:
        field = model.model_fields.get(part) if hasattr(model, "model_fields") else None
        model = field.annotation if field is not None else None
        if model is None or not hasattr(model, "model_fields"):
            return set()
    return set(model.model_fields)


def _live_list(path: str, allowed: dict[str, Any]) -> str:
    return ", ".join(f"{path}.{k}" if path else k for k in allowed)


def _deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k not in {"margins", "ttl_s"}:
            out[k] = _deep_merge(out[k], v)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = {**out[k], **v}
        else:
            out[k] = v
    return out


_SECRET_KEY = re.compile(r"pass(word)?|secret|token|api[_-]?key|^key$|authorization|credential|^sec$", re.I)
REDACTED = "**********"

# ``redact_url`` (imported above) lives in nq_ray.logs, below config, so the log filter can use it too.


def _redact_urls(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {k: _redact_urls(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_redact_urls(v) for v in obj]
    return redact_url(obj) if isinstance(obj, str) else obj


def redact(obj: Any) -> Any:
    """``obj`` with the value of every secret-looking key (password, token, api_key, ...) replaced and
    the password of every URL in its strings hidden (``redact_url``): the one redaction for anything
    shown, journaled or logged (settings, settings patches, audited tool arguments)."""
    if isinstance(obj, Mapping):
        return {
            k: (REDACTED if _SECRET_KEY.search(str(k)) and v is not None else redact(v))
            for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        return [redact(v) for v in obj]
    if isinstance(obj, str):
        return redact_url(obj)
    return obj


def expand_vars(text: str, env: dict[str, str] | None = None) -> str:
    """Expand ``${VAR}`` and ``${VAR:-default}`` from ``env`` (the process environment by default).
    An unset variable with no default is an error, not an empty string."""
    source: Mapping[str, str] = os.environ if env is None else env

    def repl(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if source.get(name):
            return source[name]
        if default is not None:
            return default
        raise ConfigError(f"config file uses ${{{name}}} but {name} is not set and has no default", var=name)

    return _VAR.sub(repl, text)


class _YamlSource(PydanticBaseSettingsSource):
    """Reads the YAML file named by ``NQ_CONFIG_FILE`` (if any), expanding ``${VAR:-default}``."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get("NQ_CONFIG_FILE")
        if not path:
            return {}
        return read_config_file(Path(path))


def read_config_file(path: Path) -> dict[str, Any]:
    """The YAML config file as a dict, after variable expansion; ``ConfigError`` if unreadable."""
    if not path.is_file():
        raise ConfigError(
            f"NQ_CONFIG_FILE={path} does not exist; point it at a YAML file or unset it", path=str(path)
        )
    try:
        data = yaml.safe_load(expand_vars(path.read_text(encoding="utf-8")))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}", path=str(path)) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of sections (data:, risk:, ...)", path=str(path))
    return data


def _describe(err: Any) -> str:
    key = ".".join(str(p) for p in err.get("loc", ()))
    value = err.get("input")
    if isinstance(value, dict):
        value = "{...}"
    allowed = err.get("msg", "")
    ctx = err.get("ctx") or {}
    if "expected" in ctx:
        allowed = f"expected {ctx['expected']}"
    return f"{key}={value!r}: {allowed}"


def _build(values: dict[str, Any] | None = None, *, from_env: bool = True) -> Settings:
    try:
        if from_env:
            return Settings(**(values or {}))
        return Settings.model_validate(values or {})
    except ValidationError as exc:
        errors = exc.errors()
        msg = "; ".join(_describe(e) for e in errors)
        raise ConfigError(
            f"invalid settings: {msg}",
            errors=[
                {"key": ".".join(map(str, e["loc"])), "value": repr(e.get("input")), "allowed": e["msg"]}
                for e in errors
            ],
        ) from None


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and ``NQ_CONFIG_FILE``; invalid values raise one ``ConfigError``."""
    return _build(overrides)
