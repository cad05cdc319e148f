"""Risk tools: VaR, portfolio risk, the pre-trade gate, position sizing."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from nq_ray.config import Settings
from nq_ray.domain.contracts import get_contract
from nq_ray.risk.gate import RiskVerdict
from nq_ray.risk.limits import RiskLimits
from nq_ray.risk.sizing import PositionSize
from nq_ray.risk.var import VaRResult
from nq_ray.tools.args import DEFAULT_SOURCE, DataOrigin, Interval, Source, Symbol, origin
from nq_ray.tools.compute import in_thread, offload
from nq_ray.tools.context import current
from nq_ray.tools.data import load

Confidence = Annotated[float, Field(gt=0.5, lt=1, description="confidence level, e.g. 0.95 or 0.99")]
VaRMethod = Literal["historical", "normal", "cornish_fisher", "monte_carlo"]
Contracts = Annotated[int, Field(ge=-10_000, le=10_000, description="signed contracts: + long, − short")]


class VaROut(BaseModel):
    """Value at Risk and Expected Shortfall in USD (positive = loss) over ``horizon_days`` sessions."""

    symbol: str
    contracts: int
    var: VaRResult
    origin: DataOrigin


def _var(
    settings: Settings,
    symbol: str,
    contracts: int,
    confidence: float,
    method: str,
    horizon_days: int,
    source: str,
    as_of: datetime | None,
) -> VaROut:
    from nq_ray.risk.var import value_at_risk

    root = get_contract(symbol).symbol
    bars = load(settings, root, "1d", source, as_of=as_of)
    res = value_at_risk(
        {root: contracts},
        {root: bars},
        method=method,  # type: ignore[arg-type]  # the tool's input model checks the name
        confidence=confidence,
        horizon_bars=horizon_days,
    )
    return VaROut(symbol=root, contracts=contracts, var=res, origin=origin(source, bars))


async def calculate_var(
    symbol: Symbol = "NQ",
    contracts: Contracts = 1,
    confidence: Confidence = 0.95,
    method: VaRMethod = "historical",
    horizon_days: Annotated[int, Field(ge=1, le=60, description="holding period in sessions")] = 1,
    source: Source = DEFAULT_SOURCE,
) -> VaROut:
    """Value at Risk and Expected Shortfall (USD) of a position in one contract from daily bars:
    historical, normal, Cornish-Fisher or Monte Carlo. Use for "how much could 2 NQ lose in a day?"."""
    ctx = current()
    return await offload(
        _var, ctx.settings, symbol, contracts, confidence, method, horizon_days, source, ctx.data_as_of
    )


# ------------------------------------------------------------------------------ assess_portfolio_risk
class PortfolioRisk(BaseModel):
    """The book's exposure, margin use and VaR, with the limits the gate enforces."""

    positions: dict[str, int] = Field(description="signed contracts by symbol")
    from_broker: bool = Field(description="true when the positions are the paper broker's")
    exposure_usd: dict[str, float]
    gross_exposure_usd: float
    initial_margin_usd: float
    equity_usd: float
    margin_use_pct: float = Field(description="initial margin / equity in percent (72.6 means 72.6 %)")
    var: VaRResult | None = Field(description="None for a flat book")
    limits: RiskLimits
    portfolio: dict[str, Any] | None = Field(description="the broker's positions and P&L, when used")
    origin: DataOrigin | None


def _portfolio_risk(
    settings: Settings,
    positions: dict[str, int],
    equity: float,
    confidence: float,
    method: str,
    source: str,
    broker: dict[str, Any] | None,
    as_of: datetime | None,
    limits: RiskLimits | None = None,
) -> PortfolioRisk:
    from nq_ray.risk.var import value_at_risk

    book = {get_contract(s).symbol: q for s, q in positions.items() if q}
    bars = {s: load(settings, s, "1d", source, as_of=as_of) for s in book}
    var = None
    exposure: dict[str, float] = {}
    org = None
    if book:
        var = value_at_risk(book, bars, method=method, confidence=confidence)  # type: ignore[arg-type]
        exposure = dict(var.exposures_usd)
        first = next(iter(bars.values()))
        org = origin(source, first)
    margin = sum(
        abs(q) * settings.risk.margins.get(s, get_contract(s).initial_margin_usd) for s, q in book.items()
    )
    return PortfolioRisk(
        positions=book,
        from_broker=broker is not None,
        exposure_usd=exposure,
        gross_exposure_usd=sum(abs(v) for v in exposure.values()),
        initial_margin_usd=margin,
        equity_usd=equity,
        margin_use_pct=100 * margin / equity if equity > 0 else 0.0,
        var=var,
        limits=limits if limits is not None else settings.risk.limits,
        portfolio=broker,
        origin=org,
    )


async def assess_portfolio_risk(
    positions: Annotated[
        dict[Annotated[str, Field(max_length=16)], Contracts] | None,
        Field(
            default=None,
            max_length=16,
            description="signed contracts by symbol; default: the paper broker's book",
        ),
    ] = None,
    confidence: Confidence = 0.95,
    method: VaRMethod = "historical",
    source: Source = DEFAULT_SOURCE,
) -> PortfolioRisk:
    """Risk of the whole book (the paper broker's positions, or ``positions`` you give): exposure,
    margin use, 1-day VaR/ES and the risk limits in force. Use before adding to a position."""
    ctx = current()
    portfolio = None
    limits = None
    equity = ctx.settings.risk.account_size_usd
    if positions is None:
        broker = ctx.broker()
        portfolio = await broker.portfolio()
        gate_limits = getattr(broker, "limits", None)  # the paper broker's: what its gate enforces
        if gate_limits is not None:
            limits = RiskLimits.model_validate(await gate_limits())
        positions = {s: int(r["quantity"]) for s, r in portfolio["positions"].items()}
        equity = float(portfolio.get("equity_usd") or equity)
    return await offload(
        _portfolio_risk,
        ctx.settings,
        dict(positions),
        equity,
        confidence,
        method,
        source,
        portfolio,
        ctx.data_as_of,
        limits,
    )


# ---------------------------------------------------------------------------------- check_risk_limits
class LimitCheck(BaseModel):
    """The pre-trade gate's verdict on a proposed order against the paper account (nothing is sent), with
    the limits the gate applied to it (taken from the verdict: what is shown is what was enforced)."""

    verdict: RiskVerdict
    limits: RiskLimits
    settings_version: int | None = Field(
        default=None, description="the live settings version the gate checked against (None: not known)"
    )


async def check_risk_limits(
    symbol: Symbol = "NQ",
    side: Literal["buy", "sell"] = "buy",
    contracts: Annotated[int, Field(ge=1, le=10_000)] = 1,
    order_type: Literal["market", "limit", "stop"] = "market",
    price: Annotated[float | None, Field(gt=0, le=1e7, description="limit or stop price")] = None,
) -> LimitCheck:
    """Would this order pass the risk limits (position size, notional, margin, daily loss, drawdown,
    order rate, trading hours)? Returns approved / reduced / denied with reasons. Sends nothing."""
    from nq_ray.tools.execution import order_payload

    ctx = current()
    order = order_payload(symbol, side, contracts, order_type, price, None, None, None)
    verdict = await ctx.broker().check_order(order)
    limits = verdict.limits if verdict.limits is not None else ctx.settings.risk.limits
    return LimitCheck(verdict=verdict, limits=limits, settings_version=verdict.settings_version)


# ----------------------------------------------------------------------------- calculate_position_size
class SizeOut(BaseModel):
    size: PositionSize
    equity_usd: float
    atr_pts: float | None = None
    origin: DataOrigin | None = None


def _size(
    settings: Settings,
    symbol: str,
    method: str,
    equity: float,
    risk_pct: float,
    stop_ticks: float | None,
    atr_multiple: float,
    contracts: int,
    interval: str,
    source: str,
    as_of: datetime | None,
) -> SizeOut:
    from nq_ray.errors import InvalidArgumentError
    from nq_ray.risk import sizing

    c = get_contract(symbol)
    if method == "fixed_contracts":
        return SizeOut(size=sizing.fixed_contracts(contracts, c), equity_usd=equity)
    if method == "fixed_fractional":
        if stop_ticks is None:
            raise InvalidArgumentError("fixed_fractional needs stop_ticks (distance to the stop in ticks)")
        return SizeOut(size=sizing.fixed_fractional(equity, risk_pct / 100, stop_ticks, c), equity_usd=equity)
    bars = load(settings, c.symbol, interval, source, as_of=as_of)
    atr = sizing.atr_points(bars)
    size = sizing.atr_stop(equity, risk_pct / 100, atr, c, atr_multiple=atr_multiple)
    return SizeOut(size=size, equity_usd=equity, atr_pts=atr, origin=origin(source, bars))


async def calculate_position_size(
    symbol: Symbol = "NQ",
    method: Literal["fixed_fractional", "atr_stop", "fixed_contracts"] = "atr_stop",
    risk_pct: Annotated[
        float, Field(gt=0, le=100, description="percent of equity to risk, e.g. 1 = 1%")
    ] = 1.0,
    stop_ticks: Annotated[
        float | None, Field(gt=0, le=100_000, description="stop distance (fixed_fractional)")
    ] = None,
    atr_multiple: Annotated[float, Field(gt=0, le=50, description="stop = k × ATR(14) (atr_stop)")] = 2.0,
    contracts: Annotated[int, Field(ge=0, le=10_000, description="fixed_contracts only")] = 1,
    account_size: Annotated[
        float | None, Field(gt=0, le=1e10, description="equity USD; default from settings")
    ] = None,
    interval: Interval = "5m",
    source: Source = DEFAULT_SOURCE,
) -> SizeOut:
    """How many contracts to trade: fixed-fractional risk per trade against a stop in ticks, or an ATR
    stop (k × ATR), with the working shown. Use before placing an order."""
    ctx = current()
    equity = account_size if account_size is not None else ctx.settings.risk.account_size_usd
    return await in_thread(
        _size,
        ctx.settings,
        symbol,
        method,
        equity,
        risk_pct,
        stop_ticks,
        atr_multiple,
        contracts,
        interval,
        source,
        ctx.data_as_of,
    )
