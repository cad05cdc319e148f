"""The ``tradovate`` source: historical bars from the Tradovate (demo) API, behind credentials in settings.

What is implemented, honestly:
- **Authentication** over REST with httpx: ``POST {base_url}/auth/accesstokenrequest`` with
  ``name, password, appId, appVersion, cid, sec``. The answer's ``accessToken``/``mdAccessToken`` and
  ``expirationTime`` are kept and reused until a minute before expiry. ``errorText`` becomes a
  ``ProviderUnavailableError`` quoting it; a penalty ticket (``p-ticket``, ``p-time``, ``p-captcha``)
  becomes one that says how long to wait (a captcha cannot be solved here).
- **Bars** with ``md/getChart``. Tradovate serves charts only over its market-data WebSocket (not REST),
  so httpx cannot fetch them: we use the ``websockets`` sync client and Tradovate's frame protocol
  (server ``o`` open, ``h`` heartbeat answered with ``[]``, ``a[...]`` message arrays; client requests
  ``endpoint\\nid\\n\\nbody``; ``authorize`` with the md token as request 0). Bars arrive in ``chart``
  events until the historical subscription sends ``eoh``; the subscription is then cancelled
  (``md/cancelChart``). ``volume`` = ``upVolume + downVolume``.
- **Contract**: Tradovate charts dated contracts, so the root maps to the front quarterly contract at
  ``end`` (rolled 8 days before the third-Friday expiry), e.g. ``NQM6``. Long ranges that span a roll
  are served from that one contract (no back-adjusted continuous series).
- Intervals: 1m–1h as ``MinuteBar`` of N minutes, 4h from 60-minute bars resampled session-aware, 1d as
  ``DailyBar`` (labelled 00:00 America/New_York of the bar's date), 1wk resampled from daily bars.
- Not implemented: the live (non-demo) environment switch beyond ``base_url``, token renewal via
  ``auth/renewaccesstoken``, replay sessions, and any order routing (``nq_ray/execution`` owns that).

The market-data WebSocket URL is ``wss://md.tradovateapi.com/v1/websocket`` for Tradovate's own hosts;
for any other ``base_url`` (a local test server, a proxy) it is ``base_url`` with ``ws(s)://`` and
``/websocket``. Pass ``md_url`` to override.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import httpx
import pandas as pd

from nq_ray.config import Settings, TradovateSettings, load_settings
from nq_ray.data.frames import normalize_bars
from nq_ray.data.intervals import parse_interval
from nq_ray.data.resample import resample_bars
from nq_ray.domain.bars import EXCHANGE_TZ
from nq_ray.domain.contracts import MONTH_CODES, get_contract
from nq_ray.errors import (
    CredentialsMissingError,
    DataUnavailableError,
    InvalidArgumentError,
    ProviderUnavailableError,
)

ENV_KEYS = {
    "username": "NQ_DATA__TRADOVATE__USERNAME",
    "password": "NQ_DATA__TRADOVATE__PASSWORD",
    "cid": "NQ_DATA__TRADOVATE__CID",
    "sec": "NQ_DATA__TRADOVATE__SEC",
}
TRADOVATE_MD_URL = "wss://md.tradovateapi.com/v1/websocket"
_ROLL_DAYS_BEFORE_EXPIRY = 8
_MAX_ELEMENTS = 50_000  # cap of bars asked for in one getChart request

# nq-ray interval → (underlyingType, elementSize, interval to resample to afterwards or None)
_CHART: dict[str, tuple[str, int, str | None]] = {
    "1m": ("MinuteBar", 1, None),
    "2m": ("MinuteBar", 2, None),
    "5m": ("MinuteBar", 5, None),
    "15m": ("MinuteBar", 15, None),
    "30m": ("MinuteBar", 30, None),
    "1h": ("MinuteBar", 60, None),
    "4h": ("MinuteBar", 60, "4h"),
    "1d": ("DailyBar", 1, None),
    "1wk": ("DailyBar", 1, "1wk"),
}


@dataclass(frozen=True)
class AccessToken:
    """What ``auth/accesstokenrequest`` grants; never logged."""

    access_token: str
    md_access_token: str
    expires_at: datetime
    user_id: int | None = None

    def __repr__(self) -> str:
        return f"AccessToken(expires_at={self.expires_at.isoformat()}, user_id={self.user_id})"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def require_credentials(cfg: TradovateSettings) -> None:
    """``CredentialsMissingError`` naming the settings keys to set when any credential is missing."""
    missing = [key for key in ENV_KEYS if not getattr(cfg, key)]
    if missing:
        raise CredentialsMissingError(
            "the tradovate source needs Tradovate API credentials; set "
            + ", ".join(ENV_KEYS.values())
            + f" (missing: {', '.join(ENV_KEYS[k] for k in missing)}), or the same keys under data.tradovate "
            "in the YAML config; or use source='yahoo', 'sample' or 'synthetic'",
            missing=[ENV_KEYS[k] for k in missing],
        )


def front_contract(root: str, at: datetime) -> str:
    """The front quarterly contract code of ``root`` at ``at``, e.g. ``NQM6``: the first listed month
    whose third-Friday expiry is more than 8 days away (CME equity-index roll convention)."""
    contract = get_contract(root)
    day = pd.Timestamp(at).tz_convert(EXCHANGE_TZ).date()
    year = day.year
    for _ in range(3):
        for letter in contract.months:
            month = MONTH_CODES.index(letter) + 1
            if _third_friday(year, month) - timedelta(days=_ROLL_DAYS_BEFORE_EXPIRY) > day:
                return f"{contract.symbol}{letter}{year % 10}"
        year += 1
    raise InvalidArgumentError(f"no listed contract month for {root}")  # pragma: no cover


def _third_friday(year: int, month: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(4 - first.weekday()) % 7 + 14)


def md_url_for(base_url: str) -> str:
    """The market-data WebSocket URL that goes with ``base_url`` (see the module docstring)."""
    parsed = urlparse(base_url)
    if parsed.hostname and parsed.hostname.endswith("tradovateapi.com"):
        return TRADOVATE_MD_URL
    scheme = "wss" if parsed.scheme == "https" else "ws"
    return f"{scheme}://{parsed.netloc}{parsed.path.rstrip('/')}/websocket"


class TradovateClient:
    """A small client: access token over REST (httpx), charts over the market-data WebSocket."""

    def __init__(
        self,
        cfg: TradovateSettings,
        *,
        md_url: str | None = None,
        clock: Callable[[], datetime] = _utc_now,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        require_credentials(cfg)
        self.cfg = cfg
        self.md_url = md_url or md_url_for(cfg.base_url)
        self._clock = clock
        self._transport = transport
        self._token: AccessToken | None = None
        self._lock = threading.Lock()

    def access_token(self) -> AccessToken:
        """A valid token, requested again a minute before the current one expires."""
        with self._lock:
            if self._token is None or self._token.expires_at - timedelta(minutes=1) <= self._clock():
                self._token = self._request_token()
            return self._token

    def _request_token(self) -> AccessToken:
        cfg = self.cfg
        assert cfg.password is not None and cfg.sec is not None  # checked by require_credentials
        body = {
            "name": cfg.username,
            "password": cfg.password.get_secret_value(),
            "appId": cfg.app_id,
            "appVersion": cfg.app_version,
            "cid": cfg.cid,
            "sec": cfg.sec.get_secret_value(),
        }
        url = f"{cfg.base_url.rstrip('/')}/auth/accesstokenrequest"
        try:
            with httpx.Client(timeout=cfg.timeout_s, transport=self._transport) as http:
                resp = http.post(url, json=body)
        except httpx.HTTPError as exc:
            raise ProviderUnavailableError(
                f"Tradovate at {cfg.base_url} cannot be reached ({type(exc).__name__}: {exc}); check "
                "data.tradovate.base_url and the network",
                base_url=cfg.base_url,
            ) from exc
        try:
            data = resp.json()
        except ValueError:
            data = {}
        if resp.status_code >= 400 or not isinstance(data, dict):
            raise ProviderUnavailableError(
                f"Tradovate auth failed with HTTP {resp.status_code}: {resp.text[:200]}",
                status=resp.status_code,
            )
        if data.get("errorText"):
            raise ProviderUnavailableError(
                f"Tradovate refused the credentials: {data['errorText']}; "
                f"check {', '.join(ENV_KEYS.values())}",
                error_text=data["errorText"],
            )
        if "p-ticket" in data:
            wait_s = data.get("p-time")
            hint = (
                "Tradovate asks for a captcha: log in once at trader.tradovate.com, then retry"
                if data.get("p-captcha")
                else f"wait {wait_s} s before trying again"
            )
            raise ProviderUnavailableError(
                f"Tradovate rate-limited the login (penalty ticket); {hint}",
                wait_s=wait_s,
                captcha=bool(data.get("p-captcha")),
            )
        if "accessToken" not in data or "expirationTime" not in data:
            raise ProviderUnavailableError(
                f"unexpected Tradovate auth answer (keys {sorted(data)}); "
                "expected accessToken and expirationTime"
            )
        return AccessToken(
            access_token=data["accessToken"],
            md_access_token=data.get("mdAccessToken") or data["accessToken"],
            expires_at=pd.Timestamp(data["expirationTime"]).tz_convert("UTC").to_pydatetime(),
            user_id=data.get("userId"),
        )

    def get_chart(
        self, symbol: str, chart_description: dict[str, Any], time_range: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Every historical bar of one ``md/getChart`` request (until ``eoh``), as Tradovate's dicts."""
        from websockets.exceptions import WebSocketException
        from websockets.sync.client import connect

        token = self.access_token()
        timeout = self.cfg.timeout_s
        body = {"symbol": symbol, "chartDescription": chart_description, "timeRange": time_range}
        bars: list[dict[str, Any]] = []
        try:
            with connect(self.md_url, open_timeout=timeout, close_timeout=2) as ws:
                session = _Frames(ws, timeout)
                session.expect_open()
                session.request("authorize", 0, token.md_access_token)
                session.response(0, "authorize")
                session.request("md/getChart", 1, json.dumps(body))
                ids = session.response(1, "md/getChart")
                historical = ids.get("historicalId")
                done = False
                while not done:
                    for msg in session.messages():
                        if msg.get("e") != "chart":
                            continue
                        for chart in (msg.get("d") or {}).get("charts", []):
                            if chart.get("id") != historical:
                                continue
                            if chart.get("eoh"):
                                done = True
                            bars.extend(chart.get("bars") or [])
                session.request("md/cancelChart", 2, json.dumps({"subscriptionId": historical}))
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise ProviderUnavailableError(
                f"Tradovate market data at {self.md_url} failed ({type(exc).__name__}: {exc})",
                md_url=self.md_url,
            ) from exc
        return bars


class _Frames:
    """Tradovate's WebSocket framing over a sync ``websockets`` connection."""

    def __init__(self, ws: Any, timeout_s: float) -> None:
        self.ws = ws
        self.timeout_s = timeout_s
        self._pending: list[dict[str, Any]] = []

    def expect_open(self) -> None:
        frame = self.ws.recv(timeout=self.timeout_s)
        if frame != "o":
            raise ProviderUnavailableError(
                f"Tradovate WebSocket did not open properly (first frame {frame[:40]!r})"
            )

    def request(self, endpoint: str, request_id: int, body: str) -> None:
        self.ws.send(f"{endpoint}\n{request_id}\n\n{body}")

    def messages(self) -> list[dict[str, Any]]:
        """The next ``a[...]`` array (answering heartbeats on the way)."""
        if self._pending:
            out, self._pending = self._pending, []
            return out
        while True:
            frame = self.ws.recv(timeout=self.timeout_s)
            if frame == "h":
                self.ws.send("[]")
                continue
            if frame == "c":
                raise ProviderUnavailableError("Tradovate closed the market-data WebSocket")
            if frame.startswith("a"):
                return list(json.loads(frame[1:]))

    def response(self, request_id: int, what: str) -> dict[str, Any]:
        """The answer to request ``request_id``; other messages are kept for ``messages()``."""
        while True:
            for i, msg in enumerate(batch := self.messages()):
                if msg.get("i") == request_id:
                    self._pending.extend(batch[:i] + batch[i + 1 :])
                    if msg.get("s") != 200:
                        raise ProviderUnavailableError(
                            f"Tradovate {what} failed (status {msg.get('s')}): {msg.get('d')}",
                            status=msg.get("s"),
                        )
                    d = msg.get("d")
                    return d if isinstance(d, dict) else {}
            self._pending.extend(batch)
            if len(self._pending) > 10_000:  # pragma: no cover - a server that never answers
                raise ProviderUnavailableError(f"Tradovate never answered {what}")


def bars_to_frame(bars: list[dict[str, Any]], interval: str, symbol: str) -> pd.DataFrame:
    """Tradovate chart bars → a bar frame (``timestamp`` is the bar start in UTC)."""
    if not bars:
        raise DataUnavailableError(f"Tradovate returned no {interval} bars for {symbol}", symbol=symbol)
    raw = pd.DataFrame(bars)
    index = pd.DatetimeIndex(pd.to_datetime(raw["timestamp"], utc=True))
    if _CHART[interval][0] == "DailyBar":
        index = index.tz_localize(None).normalize().tz_localize(EXCHANGE_TZ)
    volume = sum(
        (raw[c].fillna(0).to_numpy() for c in ("upVolume", "downVolume") if c in raw),
        0.0 * raw["close"].to_numpy(),
    )
    frame = pd.DataFrame(
        {
            "open": raw["open"].to_numpy(),
            "high": raw["high"].to_numpy(),
            "low": raw["low"].to_numpy(),
            "close": raw["close"].to_numpy(),
            "volume": volume,
        },
        index=index,
    )
    frame = frame[~frame.index.duplicated(keep="last")].sort_index()
    return normalize_bars(frame, source=f"tradovate:{symbol}")


_CLIENTS: dict[tuple[str, str | None], TradovateClient] = {}
_CLIENTS_LOCK = threading.Lock()


def _client(cfg: TradovateSettings, md_url: str | None) -> TradovateClient:
    key = (cfg.base_url, cfg.username)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None or client.cfg != cfg or (md_url and client.md_url != md_url):
            client = _CLIENTS[key] = TradovateClient(cfg, md_url=md_url)
        return client


def fetch(
    root: str,
    interval: str,
    start: Any = None,
    end: Any = None,
    settings: Settings | None = None,
    *,
    client: TradovateClient | None = None,
    clock: Callable[[], datetime] = _utc_now,
) -> pd.DataFrame:
    """Bars of ``root``'s front contract at ``interval`` in [start, end] from Tradovate, as a bar frame.

    Without credentials: ``CredentialsMissingError`` naming the keys to set. Without ``start`` the most
    recent bars are asked for (up to 5,000 elements)."""
    cfg = (settings or load_settings()).data.tradovate
    require_credentials(cfg)
    interval = parse_interval(interval)
    client = client or _client(cfg, None)
    e = pd.Timestamp(clock()).tz_convert("UTC") if end is None else pd.Timestamp(end).tz_convert("UTC")
    symbol = front_contract(root, e.to_pydatetime())
    underlying, size, resample_to = _CHART[interval]
    time_range: dict[str, Any] = {"closestTimestamp": e.strftime("%Y-%m-%dT%H:%M:%S.000Z")}
    if start is None:
        time_range["asMuchAsElements"] = 5_000
    else:
        time_range["asFarAsTimestamp"] = (
            pd.Timestamp(start).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.000Z")
        )
        time_range["asMuchAsElements"] = _MAX_ELEMENTS
    description = {
        "underlyingType": underlying,
        "elementSize": size,
        "elementSizeUnit": "UnderlyingUnits",
        "withHistogram": False,
    }
    bars = bars_to_frame(client.get_chart(symbol, description, time_range), interval, symbol)
    if resample_to is not None:
        bars = resample_bars(bars, resample_to)
    return bars
