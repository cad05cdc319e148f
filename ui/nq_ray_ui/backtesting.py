"""The Backtesting tab: run one backtest as a job, compare strategies, sweep a grid, walk forward, and a
prop-firm challenge (``nq_ray_ui.challenge``).

Strategies and their default parameters, symbols, intervals, sources, metrics and the costs' defaults
come from the catalogue (``GET /api/catalog`` and the tools' input schemas), never from a copy here.
"""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Iterator
from typing import Any

import gradio as gr

from nq_ray_ui import charts
from nq_ray_ui.client import ApiError, NotAvailable
from nq_ray_ui.render import (
    error_html,
    esc,
    frame,
    kv_table,
    num,
    ok_html,
    pct,
    progress_html,
    source_badge,
    usd,
)
from nq_ray_ui.state import Catalog, Ctx, TabView, args_given, json_arg, pick, range_args

SWEEP_GRID = '{"fast": [5, 10, 15, 20], "slow": [30, 50, 80, 100]}'  # an example for the cross strategies
WALK_FORWARD_GRID = '{"fast": [5, 10, 20], "slow": [30, 50, 100]}'


def _costs(
    contracts: float | None,
    commission: float | None,
    slippage: float | None,
    stop: float | None,
    target: float | None,
) -> dict[str, Any]:
    """The ``costs`` argument; a field left empty is left out, so the server's default applies."""
    out: dict[str, Any] = {}
    if contracts is not None:
        out["contracts"] = int(contracts)
    if commission is not None:
        out["commission_per_contract"] = float(commission)
    if slippage is not None:
        out["slippage_ticks"] = float(slippage)
    if stop:
        out["stop_loss_ticks"] = float(stop)
    if target:
        out["take_profit_ticks"] = float(target)
    return out


def _metrics_html(m: dict[str, Any]) -> str:
    rows = [
        ("net P&L", usd(m.get("net_pnl_usd"), signed=True)),
        ("total return", pct(m.get("total_return"), 2)),
        ("Sharpe", num(m.get("sharpe"))),
        ("Sortino", num(m.get("sortino"))),
        ("max drawdown", f"{usd(m.get('max_drawdown_usd'))} ({pct(m.get('max_drawdown_pct'))})"),
        ("trades", num(m.get("n_trades"), 0)),
        ("win rate", pct(m.get("win_rate"))),
        ("profit factor", num(m.get("profit_factor"))),
        ("expectancy", usd(m.get("expectancy_usd"), signed=True)),
        ("avg win / loss", f"{usd(m.get('avg_win_usd'))} / {usd(m.get('avg_loss_usd'))}"),
        ("commission", usd(m.get("commission_usd"))),
        ("final equity", usd(m.get("final_equity_usd"))),
    ]
    return '<div data-testid="metrics"><h4>Metrics</h4>' + kv_table(rows) + "</div>"


def _write_csv(result: dict[str, Any]) -> str:
    """Trades, equity curve and metrics of one backtest as a CSV file for download."""
    suffix = f"_{result.get('strategy', 'backtest')}.csv"
    with tempfile.NamedTemporaryFile("w", suffix=suffix, delete=False, newline="") as fd:
        w = csv.writer(fd)
        w.writerow(["section", "key", "value"])
        for k, v in (result.get("metrics") or {}).items():
            w.writerow(["metric", k, v])
        for k, v in (result.get("params") or {}).items():
            w.writerow(["param", k, v])
        w.writerow([])
        trades = result.get("last_trades") or []
        if trades:
            cols = list(trades[0].keys())
            w.writerow(["trade", *cols])
            for t in trades:
                w.writerow(["trade", *[t.get(c) for c in cols]])
        w.writerow([])
        w.writerow(["equity", "time", "equity_usd"])
        for t, e in result.get("equity_curve") or []:
            w.writerow(["equity", t, e])
    return fd.name


def backtest_run(
    ctx: Ctx,
    strategy: str,
    params_text: str,
    symbol: str,
    interval: str,
    source: str,
    period: str,
    start: str,
    end: str,
    contracts: float | None,
    commission: float | None,
    slippage: float | None,
    stop: float | None,
    target: float | None,
) -> Iterator[tuple[Any, ...]]:
    """Run ``run_backtest`` as a job; the progress bar follows it, then the results fill in."""
    blank = charts.empty("run a backtest to see its equity curve")
    try:
        args = {
            "strategy": strategy,
            "params": json_arg(params_text, "parameters") or None,
            "symbol": symbol,
            "interval": interval,
            "source": source,
            "costs": _costs(contracts, commission, slippage, stop, target),
        } | range_args(period, start, end)
        state: dict[str, Any] = {}
        for state in ctx.run_job("run_backtest", args_given(args)):
            yield progress_html(state, "backtest"), blank, frame([]), "", None, ""
    except ApiError as exc:
        yield "", blank, frame([]), "", None, error_html(exc, "backtest")
        return
    if state.get("status") != "succeeded":
        err = state.get("error") or {}
        msg = err.get("detail") or err.get("message") if isinstance(err, dict) else str(err)
        yield (
            progress_html(state, "backtest"),
            blank,
            frame([]),
            "",
            None,
            error_html(ApiError(str(msg or state.get("status"))), "backtest"),
        )
        return
    res = state["result"]
    label = f"{res['strategy']} {json.dumps(res.get('params'))} on {res['symbol']} {res['interval']}"
    fig = charts.equity_figure(res.get("equity_curve") or [], title=f"Equity and drawdown · {label}")
    trades = frame(
        list(reversed(res.get("last_trades") or [])),
        [
            "entry_time",
            "exit_time",
            "side",
            "contracts",
            "entry_price",
            "exit_price",
            "pnl_usd",
            "exit_reason",
        ],
    )
    summary = _metrics_html(res.get("metrics", {})) + (
        f'<div class="nq-dim">{esc(res.get("first_bar_time"))} → {esc(res.get("last_bar_time"))} · '
        f"{source_badge(res.get('origin'))}</div>"
    )
    yield progress_html(state, "backtest"), fig, trades, summary, _write_csv(res), ""


def compare_run(
    ctx: Ctx, strategies: list[str], symbol: str, interval: str, period: str, rank_by: str
) -> tuple[Any, Any, str]:
    if len(strategies or []) < 2:
        return (
            frame([]),
            charts.empty("pick two or more strategies"),
            error_html("pick two or more strategies"),
        )
    try:
        out = ctx.client.tool(
            "compare_strategies",
            strategies=strategies,
            symbol=symbol,
            interval=interval,
            rank_by=rank_by,
            **range_args(period, "", ""),
        )
    except ApiError as exc:
        return frame([]), charts.empty("comparison failed"), error_html(exc, "compare")
    rank_by = out.get("rank_by") or rank_by
    rows = [{"strategy": r["label"]} | r["metrics"] for r in out.get("rows", [])]
    cols = ["strategy", "net_pnl_usd", "sharpe", "sortino", "max_drawdown_usd", "n_trades", "win_rate"]
    fig = charts.bars_chart(
        [r["strategy"] for r in rows], [float(r.get(rank_by) or 0) for r in rows], f"{rank_by} by strategy"
    )
    return frame(rows, cols), fig, ""


def sweep_run(
    ctx: Ctx, strategy: str, grid_text: str, symbol: str, interval: str, period: str, metric: str
) -> Iterator[tuple[Any, ...]]:
    blank = charts.empty("run a sweep to see the heatmap")
    try:
        grid = json_arg(grid_text, "grid")
        if not grid:
            raise ApiError(
                'the grid is empty: give each parameter a list, e.g. {"fast": [5, 10], "slow": [30, 50]}'
            )
        args = {"strategy": strategy, "grid": grid, "symbol": symbol, "interval": interval, "metric": metric}
        args |= {"top": 100} | range_args(period, "", "")
        state: dict[str, Any] = {}
        for state in ctx.run_job("run_sweep", args_given(args)):
            yield progress_html(state, "sweep"), blank, frame([]), ""
    except ApiError as exc:
        yield "", blank, frame([]), error_html(exc, "sweep")
        return
    if state.get("status") != "succeeded":
        err = state.get("error")
        yield progress_html(state, "sweep"), blank, frame([]), error_html(ApiError(str(err)), "sweep")
        return
    res = state["result"]
    metric = res.get("metric") or metric  # the server's default when the list was not filled yet
    keys = list(grid.keys())
    fig = (
        charts.heatmap(res.get("top", []), keys[0], keys[1], metric)
        if len(keys) >= 2
        else charts.bars_chart(
            [str(r.get(keys[0])) for r in res.get("top", [])],
            [r.get(metric, 0) for r in res.get("top", [])],
            metric,
        )
    )
    table = frame(res.get("top", []), [*keys, metric, "net_pnl_usd", "max_drawdown_usd", "n_trades"])
    note = ok_html(
        f"{res.get('combinations')} combinations, best {json.dumps(res.get('best_params'))} "
        f"({res.get('skipped_combinations', 0)} skipped as invalid)"
    )
    yield progress_html(state, "sweep"), fig, table, note


def walkforward_run(
    ctx: Ctx, strategy: str, grid_text: str, symbol: str, interval: str, period: str, folds: float
) -> Iterator[tuple[Any, ...]]:
    blank = charts.empty("run a walk-forward to see the out-of-sample equity")
    if not ctx.has_tool("run_walk_forward"):
        err = error_html(NotAvailable("no run_walk_forward tool in GET /api/tools"))
        yield "", charts.empty("walk-forward is not available from this server"), frame([]), err
        return
    try:
        args = {"strategy": strategy, "grid": json_arg(grid_text, "grid"), "symbol": symbol}
        args |= (
            {"interval": interval} | ({"n_folds": int(folds)} if folds else {}) | range_args(period, "", "")
        )
        state: dict[str, Any] = {}
        for state in ctx.run_job("run_walk_forward", args_given(args)):
            yield progress_html(state, "walk-forward"), blank, frame([]), ""
    except ApiError as exc:
        yield "", blank, frame([]), error_html(exc, "walk-forward")
        return
    if state.get("status") != "succeeded":
        err = error_html(ApiError(str(state.get("error"))), "walk-forward")
        yield progress_html(state, "walk-forward"), blank, frame([]), err
        return
    out = state["result"]
    eff = out.get("efficiency_ratio")
    pnl = (out.get("oos_metrics") or {}).get("net_pnl_usd")
    summary = f"{len(out.get('folds', []))} folds · out-of-sample net P&L " + (
        f"${pnl:,.2f}" if isinstance(pnl, int | float) else "n/a"
    )
    summary += " · walk-forward efficiency " + (
        f"{eff:.2f}" if isinstance(eff, int | float) else "n/a (in-sample P&L ≤ 0)"
    )
    fig = charts.equity_figure(out.get("oos_equity_curve") or [], "Out-of-sample equity")
    yield progress_html(state, "walk-forward"), fig, frame(out.get("folds", [])), ok_html(summary)


def strategy_params(ctx: Ctx, strategy: str) -> Any:
    """The parameters box for a newly picked strategy: its defaults from the catalogue."""
    try:
        return ctx.catalog().strategy_params(strategy)
    except ApiError:
        return gr.skip()


def build(ctx: Ctx) -> list[TabView]:
    """The tab's components and events, inside the caller's ``gr.Tabs``."""
    with gr.Tab("Backtesting", id="backtesting", elem_id="tab-backtesting"), gr.Tabs():
        with gr.Tab("Run", id="bt-run"):
            with gr.Row():
                b_strategy = gr.Dropdown([], label="Strategy", min_width=150, elem_id="bt-strategy")
                b_params = gr.Textbox(label="Parameters (JSON)", min_width=160, elem_id="bt-params")
                b_symbol = gr.Dropdown([], label="Symbol", min_width=90)
                b_interval = gr.Dropdown([], label="Interval", min_width=90)
                b_source = gr.Dropdown([], label="Source", allow_custom_value=True, min_width=100)
            with gr.Row():
                b_period = gr.Textbox(value="1mo", label="Period (or start/end)", min_width=90)
                b_start = gr.Textbox(label="Start (ISO, optional)", min_width=110)
                b_end = gr.Textbox(label="End (ISO, optional)", min_width=110)
                b_contracts = gr.Number(precision=0, label="Contracts", min_width=80)
                b_comm = gr.Number(label="Commission $/side", min_width=90)
                b_slip = gr.Number(label="Slippage ticks", min_width=80)
                b_stop = gr.Number(label="Stop ticks", min_width=80)
                b_target = gr.Number(label="Target ticks", min_width=80)
            b_go = gr.Button("Run backtest", variant="primary", elem_id="run-backtest")
            b_progress = gr.HTML(elem_id="bt-progress")
            b_err = gr.HTML()
            with gr.Row():
                with gr.Column(scale=3, min_width=320):
                    b_equity = gr.Plot(elem_id="equity-chart", show_label=False)
                with gr.Column(scale=1, min_width=240):
                    b_metrics = gr.HTML(elem_id="bt-metrics")
                    b_csv = gr.DownloadButton("Download CSV", value=None)
            b_trades = gr.Dataframe(label="Trades (latest first)", interactive=False)
        with gr.Tab("Compare", id="bt-compare"):
            with gr.Row():
                k_strats = gr.Dropdown([], multiselect=True, label="Strategies", min_width=240)
                k_symbol = gr.Dropdown([], label="Symbol", min_width=90)
                k_interval = gr.Dropdown([], label="Interval", min_width=90)
                k_period = gr.Textbox(value="1mo", label="Period", min_width=80)
                k_rank = gr.Dropdown([], label="Rank by", min_width=120)
            k_go = gr.Button("Compare", variant="primary")
            k_err = gr.HTML()
            k_chart = gr.Plot(show_label=False)
            k_table = gr.Dataframe(interactive=False, label="Ranked")
        with gr.Tab("Sweep", id="bt-sweep"):
            with gr.Row():
                s_strategy = gr.Dropdown([], label="Strategy", allow_custom_value=True, min_width=130)
                s_grid = gr.Textbox(value=SWEEP_GRID, label="Grid (JSON)", min_width=220)
                s_symbol = gr.Dropdown([], label="Symbol", min_width=90)
                s_interval = gr.Dropdown([], label="Interval", min_width=90)
                s_period = gr.Textbox(value="1mo", label="Period", min_width=80)
                s_metric = gr.Dropdown([], label="Metric", min_width=110)
            s_go = gr.Button("Run sweep", variant="primary")
            s_progress = gr.HTML()
            s_err = gr.HTML()
            s_heat = gr.Plot(show_label=False)
            s_table = gr.Dataframe(interactive=False, label="Top parameter sets")
        with gr.Tab("Walk-forward", id="bt-wf"):
            with gr.Row():
                w_strategy = gr.Dropdown([], label="Strategy", min_width=130)
                w_grid = gr.Textbox(value=WALK_FORWARD_GRID, label="Grid (JSON)", min_width=220)
                w_symbol = gr.Dropdown([], label="Symbol", min_width=90)
                w_interval = gr.Dropdown([], label="Interval", min_width=90)
                w_period = gr.Textbox(value="3mo", label="Period", min_width=80)
                w_folds = gr.Number(precision=0, label="Folds", min_width=70)
            w_go = gr.Button("Run walk-forward", variant="primary")
            w_progress = gr.HTML()
            w_err = gr.HTML()
            w_chart = gr.Plot(show_label=False, elem_id="wf-equity")
            w_table = gr.Dataframe(interactive=False, label="Folds")
        from nq_ray_ui import challenge  # it reuses this module's helpers: imported once they exist

        challenge_view = challenge.build(ctx)

    b_go.click(
        lambda *a: (yield from backtest_run(ctx, *a)),
        inputs=[
            b_strategy,
            b_params,
            b_symbol,
            b_interval,
            b_source,
            b_period,
            b_start,
            b_end,
            b_contracts,
            b_comm,
            b_slip,
            b_stop,
            b_target,
        ],
        outputs=[b_progress, b_equity, b_trades, b_metrics, b_csv, b_err],
        show_progress="minimal",
    )
    b_strategy.input(lambda s: strategy_params(ctx, s), inputs=b_strategy, outputs=b_params)
    k_go.click(
        lambda *a: compare_run(ctx, *a),
        inputs=[k_strats, k_symbol, k_interval, k_period, k_rank],
        outputs=[k_table, k_chart, k_err],
    )
    s_go.click(
        lambda *a: (yield from sweep_run(ctx, *a)),
        inputs=[s_strategy, s_grid, s_symbol, s_interval, s_period, s_metric],
        outputs=[s_progress, s_heat, s_table, s_err],
        show_progress="minimal",
    )
    w_go.click(
        lambda *a: (yield from walkforward_run(ctx, *a)),
        inputs=[w_strategy, w_grid, w_symbol, w_interval, w_period, w_folds],
        outputs=[w_progress, w_chart, w_table, w_err],
        show_progress="minimal",
    )

    def names(cat: Catalog) -> list[str]:
        return list(cat.strategies)

    def symbol(cat: Catalog) -> Any:
        return pick(cat.symbols, cat.default("get_nq_price", "symbol"))

    def interval(cat: Catalog) -> Any:
        return pick(cat.intervals, cat.default("get_nq_price", "interval"))

    def fill_run(cat: Catalog) -> list[Any]:
        strategy = cat.default("run_backtest", "strategy")
        costs = cat.default("run_backtest", "costs", {})
        return [
            pick(names(cat), strategy),
            cat.strategy_params(strategy),
            symbol(cat),
            interval(cat),
            pick(cat.sources, cat.default("run_backtest", "source")),
            costs.get("contracts"),
            costs.get("commission_per_contract"),
            costs.get("slippage_ticks"),
        ]

    def fill_compare(cat: Catalog) -> list[Any]:
        compared = [s for s in cat.default("compare_strategies", "strategies", []) if s in cat.strategies]
        return [
            gr.update(choices=names(cat), value=compared),
            symbol(cat),
            interval(cat),
            pick(cat.metrics, cat.default("compare_strategies", "rank_by")),
        ]

    def fill_sweep(cat: Catalog) -> list[Any]:
        return [
            pick(names(cat), cat.default("run_sweep", "strategy")),
            symbol(cat),
            interval(cat),
            pick(cat.metrics, cat.default("run_sweep", "metric")),
        ]

    def fill_walk_forward(cat: Catalog) -> list[Any]:
        return [
            pick(names(cat), cat.default("run_walk_forward", "strategy")),
            symbol(cat),
            interval(cat),
            cat.default("run_walk_forward", "n_folds"),
        ]

    run_outputs = [b_strategy, b_params, b_symbol, b_interval, b_source, b_contracts, b_comm, b_slip]
    return [
        TabView(run_outputs, fill_run),
        TabView([k_strats, k_symbol, k_interval, k_rank], fill_compare),
        TabView([s_strategy, s_symbol, s_interval, s_metric], fill_sweep),
        TabView([w_strategy, w_symbol, w_interval, w_folds], fill_walk_forward),
        challenge_view,
    ]
