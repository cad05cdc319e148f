"""What every tab shares: the API client, the WebSocket feed, the catalogue, jobs and argument helpers.

The catalogue (symbols, intervals, sources, strategies and their default parameters, metrics, ...) comes
from the API: ``GET /api/catalog`` for the names and ``GET /api/tools`` for each tool argument's default
and allowed values (its input JSON schema). The UI keeps no copy of them, so it cannot drift from the core.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from nq_ray_ui.client import ApiClient, ApiError, LiveFeed, NotAvailable

JOB_POLL_S = 0.25
JOB_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Catalog:
    """The names the server accepts and the defaults of its tools' arguments."""

    symbols: list[str]
    intervals: list[str]
    sources: list[str]
    strategies: dict[str, dict[str, Any]]
    metrics: list[str]
    indicators: dict[str, dict[str, Any]]
    analysis_depths: list[str]
    default_analysis_depth: str
    agent_types: list[str]
    providers: list[str] = field(default_factory=list)
    tool_args: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    packs: list[str] = field(default_factory=list)  # prop-firm rule packs (an older server: none)

    @classmethod
    def from_api(
        cls, catalog: dict[str, Any], tools: list[dict[str, Any]], providers: list[str] | None = None
    ) -> Catalog:
        return cls(
            symbols=list(catalog["symbols"]),
            intervals=list(catalog["intervals"]),
            sources=[s for s in catalog["sources"] if "<" not in s],  # csv:<path> is typed, not picked
            strategies=dict(catalog["strategies"]),
            metrics=list(catalog["metrics"]),
            indicators=dict(catalog.get("indicators") or {}),
            analysis_depths=list(catalog["analysis_depths"]),
            default_analysis_depth=str(catalog["default_analysis_depth"]),
            agent_types=list(catalog["agent_types"]),
            providers=list(providers or []),
            tool_args={t["name"]: tool_arguments(t.get("input_schema") or {}) for t in tools},
            packs=list(catalog.get("packs") or []),
        )

    def default(self, tool: str, arg: str, fallback: Any = None) -> Any:
        """The default of ``tool``'s argument ``arg`` as its input schema states it."""
        value = self.tool_args.get(tool, {}).get(arg, {}).get("default")
        return fallback if value is None else value

    def choices(self, tool: str, arg: str) -> list[Any]:
        """The allowed values of an argument typed as an enum (``[]`` when it is free)."""
        return list(self.tool_args.get(tool, {}).get(arg, {}).get("enum") or [])

    def strategy_params(self, strategy: str) -> str:
        """A strategy's default parameters as the JSON the parameters box shows."""
        return json.dumps(self.strategies.get(strategy, {}))


def tool_arguments(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Argument → ``{"default": ..., "enum": [...]}`` from a tool's input JSON schema; an object argument
    (``costs``) whose own default is null gets the defaults of its fields as a dict."""
    defs = schema.get("$defs") or {}
    out: dict[str, dict[str, Any]] = {}
    for name, prop in (schema.get("properties") or {}).items():
        info: dict[str, Any] = {}
        if prop.get("default") is not None:
            info["default"] = prop["default"]
        elif (ref := _ref(prop)) and ref in defs:
            fields = defs[ref].get("properties") or {}
            info["default"] = {k: v["default"] for k, v in fields.items() if v.get("default") is not None}
        if "enum" in prop:
            info["enum"] = prop["enum"]
        out[name] = info
    return out


def _ref(prop: dict[str, Any]) -> str | None:
    for option in [prop, *(prop.get("anyOf") or [])]:
        if isinstance(option, dict) and str(option.get("$ref", "")).startswith("#/$defs/"):
            return str(option["$ref"]).rsplit("/", 1)[1]
    return None


class Ctx:
    """The API client, the WebSocket feed and what is worth asking the server only once."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self.feed = LiveFeed(client.ws_url, client.token)
        self._tools: set[str] | None = None
        self._catalog: Catalog | None = None
        self._point_values: dict[str, float] = {}
        self._lock = threading.Lock()

    def point_value(self, symbol: str) -> float:
        """USD per index point of ``symbol``'s contract (``get_contract_info``, asked once per symbol):
        what the dashboard marks pushed prices to market with."""
        if symbol not in self._point_values:
            info = self.client.tool("get_contract_info", symbol=symbol)
            self._point_values[symbol] = float(info["point_value_usd"])
        return self._point_values[symbol]

    def has_tool(self, name: str) -> bool:
        if self._tools is None:
            try:
                self._tools = self.client.tool_names()
            except ApiError:
                return False
        return name in self._tools

    def catalog(self) -> Catalog:
        """The server's catalogue, fetched on first use and kept once it answered (``ApiError`` while
        the server is unreachable, so the next page load tries again)."""
        with self._lock:
            if self._catalog is None:
                try:
                    names = self.client.get("/api/catalog")
                except NotAvailable:
                    raise ApiError(
                        f"{self.client.api_url} has no GET /api/catalog (an older nq-ray): the pick "
                        "lists stay empty; type the values instead"
                    ) from None
                tools = self.client.get("/api/tools")
                self._tools = {t["name"] for t in tools}
                self._catalog = Catalog.from_api(names, tools, self._providers())
            return self._catalog

    def _providers(self) -> list[str]:
        try:
            cfg = self.client.get("/api/config")
        except ApiError:  # a read-only token or an older server: the agent form takes a typed name
            return []
        providers = ((cfg.get("settings", cfg).get("llm") or {}).get("providers")) or []
        return [p["name"] for p in providers if p.get("name")]

    def run_job(self, tool: str, arguments: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Submit ``tool`` as a job and yield its state (plus ``elapsed_s``) until it finishes."""
        t0 = time.monotonic()
        state = self.client.post("/api/jobs", {"tool": tool, "arguments": arguments})
        state["elapsed_s"] = 0.0
        yield state
        while state.get("status") not in ("succeeded", "failed", "cancelled"):
            if time.monotonic() - t0 > JOB_TIMEOUT_S:
                raise ApiError(f"job {state['id']} still running after {JOB_TIMEOUT_S:.0f} s")
            time.sleep(JOB_POLL_S)
            state = self.client.get(f"/api/jobs/{state['id']}")
            state["elapsed_s"] = time.monotonic() - t0
            yield state


@dataclass
class TabView:
    """What a tab's ``build`` hands back to ``build_ui``: the components the catalogue fills on page
    load, ``fill`` (one update per component, in order) and ``on_ready`` (given the page-load fill
    event, chains what needs the filled values, e.g. the dashboard's first chart)."""

    catalog_outputs: list[Any] = field(default_factory=list)
    fill: Callable[[Catalog], list[Any]] = lambda _catalog: []
    on_ready: Callable[[Any], None] | None = None


def args_given(args: dict[str, Any]) -> dict[str, Any]:
    """Tool arguments without the empty ones, so the server's defaults apply to what the page left open."""
    return {k: v for k, v in args.items() if v is not None and v != ""}


def json_arg(text: str, what: str) -> dict[str, Any]:
    text = (text or "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApiError(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(value, dict):
        raise ApiError(f'{what} must be a JSON object, e.g. {{"fast": 10}}')
    return value


def range_args(period: str, start: str, end: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if (start or "").strip():
        out["start"] = start.strip()
        if (end or "").strip():
            out["end"] = end.strip()
    elif (period or "").strip():
        out["period"] = period.strip()
    return out


def pick(choices: list[Any], value: Any) -> Any:
    """A dropdown update: these choices, ``value`` selected when it is one of them (else the first)."""
    import gradio as gr

    chosen = value if value in choices else (choices[0] if choices else None)
    return gr.update(choices=choices, value=chosen)
