"""Data tools: price, history, market hours, contract specs, mock data."""

from __future__ import annotations

import functools
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import pandas as pd
from pydantic import BaseModel, Field

from nq_ray.config import Settings
from nq_ray.domain.bars import EXCHANGE_TZ
from nq_ray.domain.contracts import get_contract
from nq_ray.errors import InvalidArgumentError
from nq_ray.market.sessions import SessionStatus

# importing the store's cache makes it load_bars's default: Redis when cache.url is set (shared by every
# process and replica that serves tools), the in-process cache otherwise
from nq_ray.store import cache as _store_cache  # noqa: F401
from nq_ray.tools.args import (
    BarSeries,
    BarsQuery,
    DataOrigin,
    Interval,
    Symbol,
    When,
    origin,
    period_start,
    resolve_source,
)
from nq_ray.tools.compute import in_thread
from nq_ray.tools.context import current

MAX_ROWS = 5000


# ---------------------------------------------------------------------------------------- bar loading
@functools.lru_cache(maxsize=32)
def _immutable_bars(root: str, interval: str, source: str, seed: int) -> pd.DataFrame:
    from nq_ray.data import load_bars

    return load_bars(
        root, interval, source=source, settings=Settings.model_validate({"data": {"synthetic_seed": seed}})
    )


def load(
    settings: Settings,
    symbol: str,
    interval: str,
    source: str,
    start: str | None = None,
    end: str | None = None,
    period: str | None = None,
    *,
    as_of: datetime | None = None,
) -> pd.DataFrame:
    """Bars for a tool: sample/synthetic full series are cached (they never change); ``period`` is a
    look-back ending at the last bar.

    The point-in-time choke point: with ``as_of`` (a replay or an agent backtest), only bars that had
    closed by then (start + interval ≤ ``as_of``) are kept, before anything else looks at them; ``end``
    is clamped and ``period`` counts back from the last such bar. Every tool reads bars here.

    The file choke point too: a ``csv:``/``parquet:`` source must name a file inside
    ``settings.data.file_roots()`` (``path_not_allowed`` otherwise), whoever calls the tool."""
    from nq_ray.data import load_bars
    from nq_ray.data.intervals import interval_length

    root = get_contract(symbol).symbol
    source = resolve_source(settings, source)
    if period is not None and start is not None:
        raise InvalidArgumentError("give either period or start, not both", period=period, start=start)
    # the latest bar start that is visible at as_of: that bar closed at or before as_of
    cutoff = None if as_of is None else pd.Timestamp(as_of) - interval_length(interval)
    if cutoff is not None and (end is None or _ny(end) > cutoff):
        end = None if source in ("sample", "synthetic") and start is None else cutoff.isoformat()
    if source in ("sample", "synthetic") and start is None and end is None:
        bars = _immutable_bars(root, interval, source, settings.data.synthetic_seed)
    else:
        # a caller's csv:/parquet: file must be inside the data roots (tools answer API and MCP callers);
        # the operator's own configured source is trusted wherever it lies
        roots = None if source == settings.data.default_source else settings.data.file_roots()
        bars = load_bars(root, interval, start, end, source=source, settings=settings, roots=roots)
    if cutoff is not None:
        bars = bars.loc[bars.index <= cutoff]
    if period is not None and len(bars):
        first = period_start(bars.index[-1], period)
        if first is not None:
            bars = bars.loc[bars.index >= first]
    if len(bars) == 0:
        from nq_ray.errors import DataUnavailableError

        when = f" closed by {pd.Timestamp(as_of).isoformat()} (point in time)" if as_of is not None else ""
        raise DataUnavailableError(f"no {root} {interval} bars for that range from {source}{when}")
    return bars


def _ny(value: str) -> pd.Timestamp:
    """A tool's ``end`` argument as a tz-aware time (naive = New York, like ``load_bars``); a date means
    its last moment, so a date after ``as_of`` counts as later."""
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        ts = ts.tz_localize("America/New_York")
    if len(value.strip()) <= 10:  # a date: the whole day
        ts = ts + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    return ts


class BarOut(BaseModel):
    time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float


def bar_rows(frame: pd.DataFrame) -> list[BarOut]:
    cols = frame[["open", "high", "low", "close", "volume"]].to_numpy()
    return [
        BarOut(time=t, open=r[0], high=r[1], low=r[2], close=r[3], volume=r[4])
        for t, r in zip(frame.index.to_pydatetime(), cols, strict=True)
    ]


# ---------------------------------------------------------------------------------------- get_nq_price
class PriceQuote(BaseModel):
    """The latest price of a contract and its change, with where it came from."""

    symbol: str
    price: float = Field(description="close of the latest bar, index points")
    bar_time: datetime = Field(description="start of the latest bar (America/New_York)")
    interval: str
    change_pts: float = Field(description="change from the previous session's last close, points")
    change_pct: float
    change_usd_per_contract: float
    session_high: float
    session_low: float
    session_volume: float
    market: str = Field(description="market state now: open / daily_halt / weekend / holiday / closed_early")
    origin: DataOrigin
    clock: Literal["wall", "replay"] = Field(
        default="wall",
        description="which clock 'now' is on: wall, or a market replay's (the price is the last bar the "
        "replay has released)",
    )


def _price(
    settings: Settings, symbol: str, interval: str, source: str, now: datetime, as_of: datetime | None
) -> PriceQuote:
    from nq_ray.market.sessions import session_dates, session_status

    contract = get_contract(symbol)
    bars = load(settings, contract.symbol, interval, source, as_of=as_of)
    tail = bars.iloc[-2000:]
    sessions = session_dates(tail.index)
    today = tail.loc[sessions == sessions[-1]]
    before = tail.loc[sessions != sessions[-1]]
    last = float(tail["close"].iloc[-1])
    prev = float(before["close"].iloc[-1]) if len(before) else float(today["open"].iloc[0])
    change = last - prev
    return PriceQuote(
        symbol=contract.symbol,
        price=last,
        bar_time=tail.index[-1].to_pydatetime(),
        interval=interval,
        change_pts=change,
        change_pct=100 * change / prev if prev else 0.0,
        change_usd_per_contract=contract.pnl_usd(change),
        session_high=float(today["high"].max()),
        session_low=float(today["low"].min()),
        session_volume=float(today["volume"].sum()),
        market=session_status(now).state.value,
        origin=origin(source, bars),
    )


async def get_nq_price(query: BarSeries) -> PriceQuote:
    """Latest price of NQ (or another index future): last close, change from the previous session, the
    session's high/low/volume and the market state. Use this first when asked "where is NQ?". The
    ``origin`` field says whether the price is live (yahoo/tradovate) or from bundled sample data."""
    ctx = current()
    q = query
    quote = await in_thread(_price, ctx.settings, q.symbol, q.interval, q.source, ctx.now(), ctx.data_as_of)
    quote.clock = "replay" if ctx.replay else "wall"
    if not ctx.replay:  # a replay pushes every bar it releases itself (seq-numbered, once each)
        await ctx.emit("market_update", quote.model_dump(mode="json"))
    return quote


# --------------------------------------------------------------------------------- get_historical_data
class HistoricalData(BaseModel):
    """OHLCV bars (oldest first), capped at ``limit`` most recent rows."""

    symbol: str
    interval: str
    count: int
    truncated: bool = Field(description="true when more bars matched than were returned")
    first_bar_time: datetime
    last_bar_time: datetime
    bars: list[BarOut]
    origin: DataOrigin


def _history(
    settings: Settings,
    symbol: str,
    interval: str,
    start: str | None,
    end: str | None,
    period: str | None,
    source: str,
    limit: int,
    as_of: datetime | None,
) -> HistoricalData:
    bars = load(settings, symbol, interval, source, start, end, period, as_of=as_of)
    shown = bars.iloc[-limit:]
    return HistoricalData(
        symbol=get_contract(symbol).symbol,
        interval=interval,
        count=len(shown),
        truncated=len(bars) > len(shown),
        first_bar_time=shown.index[0].to_pydatetime(),
        last_bar_time=shown.index[-1].to_pydatetime(),
        bars=bar_rows(shown),
        origin=origin(source, bars),
    )


async def get_historical_data(
    query: BarsQuery,
    limit: Annotated[int, Field(ge=1, le=MAX_ROWS, description="most recent bars to return")] = 500,
) -> HistoricalData:
    """Historical OHLCV bars for charting or your own calculations, by ``start``/``end`` or a ``period``
    look-back. Prefer the analysis tools when you want indicators or levels rather than raw bars."""
    ctx = current()
    q = query
    return await in_thread(
        _history,
        ctx.settings,
        q.symbol,
        q.interval,
        q.start,
        q.end,
        q.period,
        q.source,
        limit,
        ctx.data_as_of,
    )


# ------------------------------------------------------------------------------------ get_market_hours
class MarketHours(BaseModel):
    """CME Globex session status at ``as_of``: open / halt / weekend / holiday, next open and close."""

    status: SessionStatus
    description: str
    globex_hours: str = "Sun–Fri 18:00–17:00 America/New_York, daily halt 17:00–18:00"
    rth_hours: str = "09:30–16:00 America/New_York"


def _hours(at: Any) -> MarketHours:
    from nq_ray.market.sessions import session_status

    st = session_status(at)
    return MarketHours(status=st, description=st.describe())


async def get_market_hours(at: When = None) -> MarketHours:
    """Is the futures market open right now (or at ``at``)? Globex/RTH state, the session date and the
    next open and close, from the CME calendar (holidays and early closes included)."""
    ctx = current()
    return await in_thread(_hours, at if at is not None else ctx.now())


# -------------------------------------------------------------------------------- get_session_calendar
class SessionOut(BaseModel):
    """One Globex session: its date, when it opens (the evening before) and closes (New York time)."""

    session_date: date
    open: datetime
    close: datetime
    early_close: bool = Field(description="closes before the usual 17:00 (a holiday schedule)")


class SessionCalendar(BaseModel):
    """The CME Globex sessions whose session date lies in a range, and the weekdays without one."""

    start: date
    end: date
    sessions: list[SessionOut]
    closed_weekdays: list[date] = Field(description="weekdays in the range with no session (holidays)")


_USUAL_CLOSE = (17, 0)


def _sessions(start: date, days: int) -> SessionCalendar:
    from nq_ray.market.sessions import schedule

    end = start + timedelta(days=days - 1)
    sched = schedule(start, end)
    rows = [
        SessionOut(
            session_date=day.date(),
            open=row.open.to_pydatetime(),
            close=row.close.to_pydatetime(),
            early_close=(row.close.hour, row.close.minute) < _USUAL_CLOSE,
        )
        for day, row in sched.iterrows()
    ]
    held = {r.session_date for r in rows}
    weekdays = pd.bdate_range(start, end).date
    return SessionCalendar(
        start=start, end=end, sessions=rows, closed_weekdays=[d for d in weekdays if d not in held]
    )


async def get_session_calendar(
    start: Annotated[
        date | None, Field(default=None, description="first session date (default: today, exchange time)")
    ] = None,
    days: Annotated[int, Field(ge=1, le=366, description="how many calendar days to list")] = 14,
) -> SessionCalendar:
    """The CME Globex session calendar: each session's open and close (New York time) over ``days``
    days from ``start``, early closes flagged, and the weekdays the market is shut (holidays)."""
    ctx = current()
    first = start if start is not None else ctx.now().astimezone(_EXCHANGE_ZONE).date()
    return await in_thread(_sessions, first, days)


# ----------------------------------------------------------------------------------- get_contract_info
class RollOut(BaseModel):
    roll_date: date
    from_contract: str
    to_contract: str
    expiry: date


class ContractInfo(BaseModel):
    """A contract's specification and its calendar: front month, expiry, next roll."""

    symbol: str
    name: str
    exchange: str
    tick_size: float
    tick_value_usd: float
    point_value_usd: float
    initial_margin_usd: float = Field(description="indicative, or the risk.margins override")
    maintenance_margin_usd: float
    yahoo_symbol: str
    contract_months: str
    front_contract: str
    front_expiry: date
    next_roll: date
    as_of: date


_EXCHANGE_ZONE = ZoneInfo(EXCHANGE_TZ)


@functools.lru_cache(maxsize=256)
def _calendar(root: str, day: date) -> tuple[str, date, date]:
    from nq_ray.market.rolls import expiry, front_contract, roll_date

    front = front_contract(root, pd.Timestamp(day, tz="America/New_York") + pd.Timedelta(hours=12))
    return str(front), expiry(front), roll_date(front)


def _contract(symbol: str, now: datetime, margins: dict[str, float]) -> ContractInfo:
    c = get_contract(symbol)
    day = now.astimezone(_EXCHANGE_ZONE).date()  # a plain datetime: pd.Timestamp costs 0.1 ms a call
    front, exp, roll = _calendar(c.symbol, day)
    return ContractInfo(
        symbol=c.symbol,
        name=c.name,
        exchange=c.exchange,
        tick_size=c.tick_size,
        tick_value_usd=c.tick_value,
        point_value_usd=c.point_value,
        initial_margin_usd=margins.get(c.symbol, c.initial_margin_usd),
        maintenance_margin_usd=c.maintenance_margin_usd,
        yahoo_symbol=c.yahoo_symbol,
        contract_months=c.months,
        front_contract=front,
        front_expiry=exp,
        next_roll=roll,
        as_of=day,
    )


async def get_contract_info(symbol: Symbol = "NQ") -> ContractInfo:
    """Contract specification: tick size and value, point value, margins, the front month, its expiry
    and the next roll date. Use it before sizing or pricing anything in dollars."""
    ctx = current()
    return _contract(symbol, ctx.now(), ctx.settings.risk.margins)


# ---------------------------------------------------------------------------------- generate_mock_data
class MockData(BaseModel):
    """Synthetic bars from the seeded generator (never market data)."""

    symbol: str
    interval: str
    seed: int
    count: int
    first_bar_time: datetime
    last_bar_time: datetime
    summary: dict[str, float]
    bars: list[BarOut] = Field(description="the last 500 bars at most")
    origin: DataOrigin


def _mock(symbol: str, interval: str, bars: int, seed: int, as_of: datetime | None) -> MockData:
    from nq_ray.data.intervals import interval_length
    from nq_ray.data.sources.synthetic import generate_bars

    # point in time: even synthetic bars end by as_of (the last one closes at it at the latest)
    end = None if as_of is None else pd.Timestamp(as_of) - interval_length(interval)
    frame = generate_bars(symbol, interval, end=end, n_bars=bars, seed=seed)
    shown = frame.iloc[-500:]
    return MockData(
        symbol=get_contract(symbol).symbol,
        interval=interval,
        seed=seed,
        count=len(frame),
        first_bar_time=frame.index[0].to_pydatetime(),
        last_bar_time=frame.index[-1].to_pydatetime(),
        summary={
            "open": float(frame["open"].iloc[0]),
            "close": float(frame["close"].iloc[-1]),
            "high": float(frame["high"].max()),
            "low": float(frame["low"].min()),
            "volume": float(frame["volume"].sum()),
        },
        bars=bar_rows(shown),
        origin=origin("synthetic", frame),
    )


async def generate_mock_data(
    symbol: Symbol = "NQ",
    interval: Interval = "1m",
    bars: Annotated[int, Field(ge=1, le=200_000, description="number of bars to generate")] = 1000,
    seed: Annotated[
        int | None, Field(ge=0, le=2**32 - 1, description="random seed (settings' default)")
    ] = None,
) -> MockData:
    """Realistic synthetic bars on the Globex clock (tick grid, halts, regimes) for tests and demos.
    Deterministic for a seed. Never use them as market data."""
    ctx = current()
    return await in_thread(
        _mock,
        symbol,
        interval,
        bars,
        ctx.settings.data.synthetic_seed if seed is None else seed,
        ctx.data_as_of,
    )
