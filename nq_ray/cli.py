"""``nq-ray`` command line. Every command maps nq-ray errors once: ``error [code]: message``, exit 2."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer

from nq_ray.errors import NQRayError

app = typer.Typer(
    name="nq-ray",
    help="nq-ray: research, risk checks and paper trading for CME equity-index futures (NQ first).",
    no_args_is_help=True,
    add_completion=False,
)
F = TypeVar("F", bound=Callable[..., Any])


def _errors_to_exit(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NQRayError as exc:
            typer.echo(f"error [{exc.code}]: {exc.message}", err=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _now(at: str | None) -> datetime:
    """The clock in exchange time: ``--at`` when given (tz-aware), else now."""
    from nq_ray.market.sessions import to_exchange_time

    return to_exchange_time(at if at is not None else datetime.now(UTC)).to_pydatetime()


def _load_bars() -> Any:
    """``load_bars``, with the store's cache (Redis when ``cache.url`` is set) as its default cache."""
    import nq_ray.store.cache  # noqa: F401  (importing it installs the store's cache for load_bars)
    from nq_ray.data import load_bars

    return load_bars


Symbol = Annotated[str, typer.Option("--symbol", "-s", help="root symbol or alias: NQ, MNQ, ES, NQ=F, NQH26")]
Interval = Annotated[str, typer.Option("--interval", "-i", help="1m 2m 5m 15m 30m 1h 4h 1d 1wk")]
ReplayStart = Annotated[
    str | None,
    typer.Option(
        "--replay",
        help="replay the data source from this exchange time (naive = New York), e.g. 2026-04-20T09:30",
    ),
]
ReplayUntil = Annotated[str | None, typer.Option("--until", help="replay: stop at this time")]
ReplaySpeed = Annotated[
    float | None, typer.Option("--speed", help="replay: times faster than real time (0 < X <= 10000)")
]
Source = Annotated[
    str, typer.Option("--source", help="sample | synthetic | yahoo | tradovate | csv:PATH | parquet:PATH")
]
At = Annotated[
    str | None, typer.Option("--at", help="clock for session status, tz-aware, e.g. 2026-03-09T10:00-04:00")
]


@app.command()
@_errors_to_exit
def status(
    symbol: Symbol = "NQ",
    interval: Interval = "5m",
    source: Source = "sample",
    at: At = None,
) -> None:
    """Market and data status: load and validate bars, print the session, front month and latest bar."""
    from nq_ray.config import load_settings, redact_url
    from nq_ray.data.quality import validate_bars
    from nq_ray.domain.contracts import get_contract
    from nq_ray.market.rolls import front_contract
    from nq_ray.market.sessions import session_dates, session_status

    load_bars = _load_bars()
    settings = load_settings()
    contract = get_contract(symbol)
    now = _now(at)
    bars = load_bars(contract.symbol, interval, source=source, settings=settings)
    report = validate_bars(bars, contract.symbol, interval, outlier_z=settings.data.outlier_z)
    status = session_status(now)
    last = bars.iloc[-1]
    prev_close = bars["close"].iloc[-2] if len(bars) > 1 else last["close"]
    change = last["close"] - prev_close
    typer.echo(
        f"nq-ray — {contract.name} ({contract.symbol}), {contract.exchange}: tick {contract.tick_size} "
        f"pts = ${contract.tick_value:.2f}, ${contract.point_value:g} a point"
    )
    typer.echo(f"clock      {now:%Y-%m-%d %H:%M %Z}: market {status.describe()}")
    typer.echo(
        f"front      {front_contract(contract.symbol, now)} (roll 8 days before the third-Friday expiry)"
    )
    store = redact_url(settings.store_url)
    typer.echo(f"data       source={source} mode={settings.execution.mode} store={store}")
    typer.echo(f"quality    {report.summary()}")
    typer.echo(
        f"latest bar {bars.index[-1]:%Y-%m-%d %H:%M %Z}  O {last['open']:.2f}  H {last['high']:.2f}  "
        f"L {last['low']:.2f}  C {last['close']:.2f}  V {last['volume']:.0f}  "
        f"({change:+.2f} pts = ${contract.pnl_usd(change):+,.2f} per contract)"
    )
    sessions = session_dates(bars.index)
    day = bars.loc[sessions == sessions[-1]]
    typer.echo(
        f"session {sessions[-1]} high {day['high'].max():.2f} low {day['low'].min():.2f} "
        f"volume {day['volume'].sum():,.0f}"
        f" over {len(day)} bars"
    )
    typer.echo(
        "next       `nq-ray --help` lists the commands: "
        "up, mcp, status, bars, validate, contract, session, config"
    )


@app.command()
@_errors_to_exit
def up(
    once: Annotated[
        bool, typer.Option("--once", help="start everything, print the URLs, then shut down (a smoke test)")
    ] = False,
    host: Annotated[str | None, typer.Option(help="listen address (default serve.host, 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (default serve.port, 8000)")] = None,
    replicas: Annotated[
        int | None, typer.Option(help="API/MCP replicas (default serve.api_replicas)")
    ] = None,
    dashboard: Annotated[
        bool | None,
        typer.Option("--dashboard/--no-dashboard", help="the Ray dashboard (default serve.dashboard, off)"),
    ] = None,
    replay: ReplayStart = None,
    until: ReplayUntil = None,
    speed: ReplaySpeed = None,
) -> None:
    """Start (or join, with RAY_ADDRESS) Ray, the broker and tool-registry actors and the Serve app (HTTP API,
    WebSocket, MCP at /mcp/) and the web UI; print the URLs and every port; Ctrl-C stops everything (a
    second Ctrl-C at once). Refuses to listen beyond loopback without NQ_MCP__AUTH_TOKEN, and a port
    that is taken (which one, and the setting that changes it)."""
    from nq_ray.config import load_settings
    from nq_ray.serve.runtime import check_bind
    from nq_ray.serve.runtime import up as run_up

    given = {"host": host, "port": port, "api_replicas": replicas, "dashboard": dashboard}
    patch = {k: v for k, v in given.items() if v is not None}
    settings = load_settings()
    if patch:  # validated like any other setting (ConfigError naming the key)
        settings = load_settings(serve=settings.serve.model_dump() | patch)
    check_bind(settings)
    run_up(settings, once=once, echo=typer.echo, replay={"start": replay, "until": until, "speed": speed})


@app.command()
@_errors_to_exit
def mcp(
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="Ray cluster for the paper broker (default RAY_ADDRESS; else a local Ray on demand)"
        ),
    ] = None,
    replay: ReplayStart = None,
    until: ReplayUntil = None,
    speed: ReplaySpeed = None,
) -> None:
    """MCP server over stdio for desktop MCP clients (Claude Desktop, ...); local, so no auth. On a
    historical source (the default sample) the market is replayed here, in this process, with its own
    paper broker; with a live source or RAY_ADDRESS the broker is the cluster's."""
    from nq_ray.mcp_stdio import main as stdio_main

    stdio_main(ray_address, replay={"start": replay, "until": until, "speed": speed})


@app.command()
@_errors_to_exit
def bars(
    symbol: Symbol = "NQ",
    interval: Interval = "5m",
    source: Source = "sample",
    start: Annotated[str | None, typer.Option(help="first bar (date or time; naive = New York)")] = None,
    end: Annotated[str | None, typer.Option(help="last bar")] = None,
    tail: Annotated[int, typer.Option(help="print the last N bars")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False,
) -> None:
    """Print bars from any source."""
    load_bars = _load_bars()
    frame = load_bars(symbol, interval, start, end, source=source).tail(tail)
    if as_json:
        for t, row in frame.iterrows():
            typer.echo(json.dumps({"time": t.isoformat(), **row.to_dict()}))
    else:
        typer.echo(frame.to_string())


@app.command()
@_errors_to_exit
def validate(
    symbol: Symbol = "NQ",
    interval: Interval = "5m",
    source: Source = "sample",
    outlier_z: Annotated[float, typer.Option(help="robust z-score threshold")] = 3.0,
) -> None:
    """Data-quality report: missing bars vs the session calendar, duplicates, OHLC, ticks, outliers."""
    from nq_ray.data.quality import validate_bars

    load_bars = _load_bars()
    report = validate_bars(load_bars(symbol, interval, source=source), symbol, interval, outlier_z)
    typer.echo(report.summary())
    for issue in report.issues:
        if issue.count:
            typer.echo(
                f"  {issue.code:<18} {issue.count:>6}  e.g. {', '.join(issue.examples[:3])}  {issue.note}"
            )
    raise typer.Exit(0 if report.ok else 1)


@app.command()
@_errors_to_exit
def contract(
    symbol: Annotated[str, typer.Argument(help="root, alias or dated code: NQ, NQ=F, NQH26, NQH6")] = "NQ",
    at: At = None,
) -> None:
    """Contract spec, front month, expiry and the next rolls."""
    from nq_ray.domain.contracts import get_contract
    from nq_ray.market.rolls import expiry, front_contract, parse_contract_code, roll_date, roll_schedule

    spec = get_contract(symbol)
    now = _now(at)
    typer.echo(json.dumps(spec.model_dump() | {"tick_value": spec.tick_value}, indent=2))
    if symbol.strip().upper() not in (spec.symbol, f"{spec.symbol}=F"):
        code = parse_contract_code(symbol)
        typer.echo(f"{code}: expires {expiry(code)}, rolls {roll_date(code)}")
    front = front_contract(spec.symbol, now)
    typer.echo(f"front month at {now:%Y-%m-%d %H:%M %Z}: {front} (expires {expiry(front)})")
    for r in roll_schedule(spec.symbol, now.date(), now.date().replace(year=now.year + 1)):
        typer.echo(f"roll {r.roll_date}: {r.from_contract} → {r.to_contract} (expiry {r.expiry})")


@app.command()
@_errors_to_exit
def session(at: At = None) -> None:
    """Globex session status: open / halt / weekend / holiday, next open and close."""
    from nq_ray.market.sessions import session_status

    typer.echo(session_status(_now(at)).model_dump_json(indent=2))


@app.command()
@_errors_to_exit
def calendar(
    start: Annotated[
        str, typer.Option("--start", help="ISO date or time (naive = New York), e.g. 2026-03-01")
    ],
    end: Annotated[str, typer.Option("--end", help="ISO date or time, exclusive (a date: the whole day)")],
    kinds: Annotated[
        str | None,
        typer.Option("--kinds", help="comma-separated event kinds, e.g. fomc,cpi,nfp; default all"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the tool's JSON (get_economic_calendar)")] = False,
) -> None:
    """Scheduled US releases (FOMC, CPI, NFP, ...) between --start and --end, New York time."""
    from nq_ray.config import load_settings
    from nq_ray.tools.calendar import economic_calendar

    wanted = [k for k in kinds.split(",") if k.strip()] if kinds is not None else None
    out = economic_calendar(load_settings().events, start, end, wanted)
    if as_json:
        typer.echo(out.model_dump_json(indent=2))
        return
    for e in out.events:
        typer.echo(f"{e.time:%a %Y-%m-%d %H:%M %Z}  {e.kind:<14} {e.title}")
    typer.echo(
        f"{out.count} event{'s' if out.count != 1 else ''} from {out.start:%Y-%m-%d %H:%M} "
        f"to {out.end:%Y-%m-%d %H:%M} (New York)"
    )
    for r in out.blackouts:
        typer.echo(
            f"blackout {', '.join(r.kinds)}: {r.before_min} min before "
            f"to {r.after_min} min after ({r.action})"
        )


@app.command()
@_errors_to_exit
def config() -> None:
    """The effective settings (env, NQ_CONFIG_FILE, defaults) with secrets redacted."""
    from nq_ray.config import load_settings

    typer.echo(json.dumps(load_settings().redacted(), indent=2, default=str))


@app.command()
@_errors_to_exit
def trade(
    symbol: Annotated[str, typer.Option(help="root symbol, e.g. NQ (the loop takes several: NQ,ES)")] = "NQ",
    once: Annotated[bool, typer.Option("--once", help="run one desk cycle and exit")] = False,
    cadence: Annotated[float, typer.Option(help="loop: seconds between cycles", min=1, max=86_400)] = 300.0,
    windows: Annotated[
        str, typer.Option(help="loop: trade in rth (09:30-16:00 ET), globex (any open hour) or always")
    ] = "globex",
    approval: Annotated[
        bool | None, typer.Option("--approval/--no-approval", help="loop: proposals wait for a human yes")
    ] = None,
    replay: ReplayStart = None,
    until: ReplayUntil = None,
    speed: ReplaySpeed = None,
) -> None:
    """The desk: one cycle with --once (analysis → risk → paper order, recorded first), else the loop,
    printing each decision until Ctrl-C (in process; the trading_desk actor when RAY_ADDRESS is set)."""
    from nq_ray.config import load_settings
    from nq_ray.runtime import Runtime
    from nq_ray.runtime.replay import start_clock

    settings = load_settings()
    if not os.environ.get("RAY_ADDRESS"):  # on a cluster, its own `nq-ray up` runs the clock
        settings, plan = start_clock(settings, start=replay, until=until, speed=speed, echo=typer.echo)
    else:
        plan = None
    if once:
        from nq_ray.agents.cli import trade_once

        # tools here; the paper broker on the cluster at RAY_ADDRESS, here on a replay (priced from the
        # replayed bars), else on a small local Ray
        if plan is not None:
            runtime = Runtime(settings, "in_process")
        else:
            runtime = Runtime.from_env(settings, default="local", feed=False)
        try:
            out = trade_once(settings, symbol=symbol, registry=runtime.registry(), clock=runtime.clock)
        finally:
            runtime.close()
        typer.echo(json.dumps(out, indent=2, default=str))
        return
    import asyncio

    from nq_ray.agents.loop import run_loop

    symbols = [s.strip() for s in symbol.split(",") if s.strip()]
    runtime = Runtime.from_env(settings)  # in process; the trading_desk actor with RAY_ADDRESS
    try:
        asyncio.run(
            run_loop(
                settings,
                symbols=symbols,
                cadence_s=cadence,
                windows=windows,
                approval_mode=approval,
                echo=typer.echo,
                runtime=runtime,
            )
        )
    finally:
        runtime.close()


@app.command()
@_errors_to_exit
def replay(
    decision_id: Annotated[int, typer.Argument(help="the desk decision's id (GET /api/decisions)", min=1)],
    provider: Annotated[
        str | None, typer.Option(help="ask this provider instead of the recorded one")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="ask this model (of --provider, or the recorded one)")
    ] = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="ask the recorded model again, not its record")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="the full result as JSON")] = False,
) -> None:
    """Rebuild a recorded decision's inputs point in time, decide again and show the differences."""
    import asyncio

    from nq_ray.agents.replay import format_replay, replay_decision
    from nq_ray.config import load_settings

    result = asyncio.run(
        replay_decision(load_settings(), decision_id, provider=provider, model=model, fresh=fresh)
    )
    typer.echo(result.model_dump_json(indent=2) if as_json else format_replay(result))


@app.command("backtest-agent")
@_errors_to_exit
def backtest_agent(
    symbol: Symbol = "NQ",
    interval: Interval = "5m",
    source: Source = "sample",
    start: Annotated[
        str | None, typer.Option(help="first bar traded (date or time; naive = New York)")
    ] = None,
    end: Annotated[str | None, typer.Option(help="last bar traded")] = None,
    every: Annotated[int, typer.Option(help="one desk decision every N bars", min=1)] = 12,
    warmup: Annotated[int, typer.Option(help="bars of the range before the first decision", min=0)] = 100,
    provider: Annotated[str | None, typer.Option(help="LLM provider (default: the configured chain)")] = None,
    model: Annotated[str | None, typer.Option(help="model of that provider")] = None,
    contracts: Annotated[int, typer.Option(help="contracts per entry", min=1)] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="the full report as JSON")] = False,
) -> None:
    """Run the desk's analysis → risk decisions over past bars, point in time, as a backtest report. With
    an LLM set NQ_LLM__CACHE=store: answers are cached by prompt hash, so a re-run is free and identical."""
    import asyncio

    from nq_ray.agents.backtest import AgentBacktestConfig, format_summary, run_agent_backtest
    from nq_ray.config import load_settings

    cfg = AgentBacktestConfig(
        symbol=symbol,
        interval=interval,
        source=source,
        start=start,
        end=end,
        every_bars=every,
        warmup_bars=warmup,
        provider=provider,
        model=model,
        contracts=contracts,
    )

    def tick(done: int, total: int, step: Any) -> None:
        if not as_json and (done == total or done % 25 == 0):
            typer.echo(
                f"  {done}/{total} decisions (last {step.bar_time}: {step.bias} {step.confidence:.2f})"
            )

    out = asyncio.run(run_agent_backtest(load_settings(), cfg, progress=tick))
    summary = out.summary()
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    typer.echo(format_summary(summary))


@app.command()
@_errors_to_exit
def challenge(
    pack: Annotated[str, typer.Option(help="rule pack: topstep-50k, apex-50k, tpt-50k, ... or a YAML path")],
    strategy: Annotated[str | None, typer.Option(help="a registered strategy, e.g. sma_cross")] = None,
    params: Annotated[str | None, typer.Option(help='strategy parameters as JSON, e.g. {"fast": 10}')] = None,
    agent: Annotated[
        str | None,
        typer.Option(
            help="run the desk's agents instead: the analyst's LLM provider (rules = the offline rules "
            "analyst; chain = the configured chain)"
        ),
    ] = None,
    symbol: Symbol = "NQ",
    interval: Interval = "5m",
    source: Source = "default",
    start: Annotated[str | None, typer.Option(help="first bar (date or time; naive = New York)")] = None,
    end: Annotated[str | None, typer.Option(help="last bar")] = None,
    costs: Annotated[
        str | None,
        typer.Option(help='contracts, commission, slippage, brackets as JSON, e.g. {"stop_loss_ticks": 80}'),
    ] = None,
    n_sims: Annotated[
        int, typer.Option("--n-sims", help="Monte Carlo paths for the pass probability", min=0)
    ] = 1000,
    seed: Annotated[int, typer.Option(help="Monte Carlo seed", min=0)] = 0,
    every: Annotated[int, typer.Option(help="--agent: one desk decision every N bars", min=1)] = 12,
    as_json: Annotated[bool, typer.Option("--json", help="the full report as JSON")] = False,
) -> None:
    """Run a prop-firm evaluation (challenge) under a rule pack on historical bars, for a strategy or the
    desk's agents: pass or fail with the rule, time and balances, daily P&L against each rule, and for a
    strategy the pass probability from resampling trading days (docs/challenge.md)."""
    from nq_ray.config import load_settings
    from nq_ray.errors import InvalidArgumentError

    if (strategy is None) == (agent is None):
        raise InvalidArgumentError("give --strategy NAME (with --params JSON) or --agent ID, one of them")
    settings = load_settings()
    if agent is not None:
        import asyncio

        from nq_ray.agents.challenge import format_agent_challenge, run_agent_challenge

        cfg = {
            "symbol": symbol,
            "interval": interval,
            "source": source,
            "start": start,
            "end": end,
            "every_bars": every,
            "provider": None if agent == "chain" else agent,
        }
        out = asyncio.run(run_agent_challenge(settings, pack, cfg)).summary()
        typer.echo(json.dumps(out, indent=2, default=str) if as_json else format_agent_challenge(out))
        return
    from nq_ray.tools.args import BarsQuery
    from nq_ray.tools.backtesting import CostsArgs, costs_of
    from nq_ray.tools.challenge import challenge_report

    query = BarsQuery(symbol=symbol, interval=interval, source=source, start=start, end=end)
    args = CostsArgs.model_validate(_json_arg(costs, "--costs")) if costs else None
    report = challenge_report(
        settings,
        query.model_dump() | {"as_of": None},
        pack,
        str(strategy),
        _json_arg(params, "--params"),
        costs_of(args, settings),
        n_sims,
        seed,
    )
    typer.echo(report.model_dump_json(indent=2) if as_json else report.text)


def _json_arg(text: str | None, name: str) -> Any:
    """A JSON option's value (an object), or ``InvalidArgumentError`` naming the option."""
    from nq_ray.errors import InvalidArgumentError

    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError(f"{name} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidArgumentError(f'{name} must be a JSON object, e.g. {{"fast": 10}}')
    return value


from nq_ray.desk_cli import desk_app  # noqa: E402  (the `nq-ray desk` commands)

app.add_typer(desk_app, name="desk")

if __name__ == "__main__":  # pragma: no cover
    app(prog_name="nq-ray")
