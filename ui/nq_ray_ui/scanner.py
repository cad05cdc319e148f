"""The Scanner tab: many symbols × timeframes at once (``scan_market`` or ``scan_backtests``) as a job, with
its progress per finished cell, a Cancel button and the ranked table.

Symbols, timeframes, sources and strategies come from the catalogue; the ranking rule shown under the
table is the server's (``rank_rule`` of the result), never a copy here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr

from nq_ray_ui.client import ApiError
from nq_ray_ui.render import error_html, esc, frame, ok_html, progress_html
from nq_ray_ui.state import Catalog, Ctx, TabView, args_given, pick

ANALYSIS_COLUMNS = [
    "rank",
    "symbol",
    "interval",
    "score",
    "bias",
    "confidence",
    "trend",
    "adx",
    "atr",
    "rsi",
    "roc_20_pct",
    "support_atr",
    "resistance_atr",
    "last_price",
]
BACKTEST_COLUMNS = [
    "rank",
    "symbol",
    "interval",
    "score",
    "sharpe",
    "net_pnl_usd",
    "n_trades",
    "win_rate",
    "profit_factor",
    "max_drawdown_pct",
]
TOOLS = {"analysis": "scan_market", "backtest": "scan_backtests"}


def scan_args(
    mode: str,
    symbols: list[str],
    timeframes: list[str],
    source: str,
    period: str,
    strategy: str,
    min_trades: float | None,
) -> dict[str, Any]:
    """The tool arguments of the form (empty ones left to the server's defaults)."""
    if not symbols:
        raise ApiError("pick at least one symbol")
    if not timeframes:
        raise ApiError("pick at least one timeframe")
    args: dict[str, Any] = {"symbols": symbols, "timeframes": timeframes, "source": source, "period": period}
    if mode == "backtest":
        args |= {"strategy": strategy, "min_trades": None if min_trades is None else int(min_trades)}
    return args_given(args)


def result_table(mode: str, result: dict[str, Any]) -> Any:
    return frame(result.get("rows", []), ANALYSIS_COLUMNS if mode == "analysis" else BACKTEST_COLUMNS)


def summary_html(result: dict[str, Any]) -> str:
    top = ", ".join(result.get("top_symbols", [])) or "none scored above 0"
    where = "Ray tasks" if result.get("parallel") else "in process"
    return ok_html(
        f"{result.get('finished')}/{result.get('cells')} cells in {result.get('elapsed_s', 0):.2f} s "
        f"({where}); best symbols: {top}. Ranking: {result.get('rank_rule', '')}"
    )


def scan_run(
    ctx: Ctx,
    job: dict[str, Any],
    mode: str,
    symbols: list[str],
    timeframes: list[str],
    source: str,
    period: str,
    strategy: str,
    min_trades: float | None,
) -> Iterator[tuple[Any, ...]]:
    """Run the scan as a job; ``job`` (the session's state) holds its id so Cancel can reach it."""
    try:
        args = scan_args(mode, symbols, timeframes, source, period, strategy, min_trades)
        state: dict[str, Any] = {}
        for state in ctx.run_job(TOOLS[mode], args):
            job["id"] = state.get("id")
            yield progress_html(state, "scan"), frame([]), "", job
    except ApiError as exc:
        yield "", frame([]), error_html(exc, "scan"), job
        return
    finally:
        job["id"] = None
    if state.get("status") == "cancelled":
        note = ok_html(
            f"cancelled after {int(state.get('progress') or 0)} of {int(state.get('total') or 0)} cells"
        )
        yield progress_html(state, "scan"), frame([]), note, job
        return
    if state.get("status") != "succeeded":
        err = state.get("error") or {}
        yield (
            progress_html(state, "scan"),
            frame([]),
            error_html(ApiError(str(err.get("message", err))), "scan"),
            job,
        )
        return
    result = state["result"]
    yield progress_html(state, "scan"), result_table(mode, result), summary_html(result), job


def scan_cancel(ctx: Ctx, job: dict[str, Any]) -> str:
    """``DELETE /api/jobs/{id}`` of the running scan."""
    job_id = job.get("id")
    if not job_id:
        return ok_html("no scan is running")
    try:
        ctx.client.delete(f"/api/jobs/{job_id}")
    except ApiError as exc:
        return error_html(exc, "cancel")
    return ok_html(f"cancel requested for job {esc(job_id)}")


def build(ctx: Ctx) -> TabView:
    """The tab's components and events, inside the caller's ``gr.Tabs``."""
    with gr.Tab("Scanner", id="scanner", elem_id="tab-scanner"):
        with gr.Row():
            mode = gr.Radio(["analysis", "backtest"], value="analysis", label="Mode", elem_id="scan-mode")
            symbols = gr.Dropdown(
                [], multiselect=True, label="Symbols", min_width=240, elem_id="scan-symbols"
            )
            timeframes = gr.Dropdown(
                [], multiselect=True, label="Timeframes", min_width=180, elem_id="scan-timeframes"
            )
            source = gr.Dropdown([], label="Source", allow_custom_value=True, min_width=100)
            period = gr.Textbox(label="Period (optional)", min_width=90)
        with gr.Row(visible=False) as bt_row:
            strategy = gr.Dropdown([], label="Strategy", min_width=150, elem_id="scan-strategy")
            min_trades = gr.Number(value=10, precision=0, label="Min trades", min_width=90)
        with gr.Row():
            go = gr.Button("Run scan", variant="primary", elem_id="run-scan")
            cancel = gr.Button("Cancel", variant="stop", elem_id="cancel-scan")
        progress = gr.HTML(elem_id="scan-progress")
        note = gr.HTML(elem_id="scan-note")
        table = gr.Dataframe(label="Ranked", interactive=False, elem_id="scan-table")
        job = gr.State({"id": None})

    mode.change(lambda m: gr.update(visible=m == "backtest"), inputs=mode, outputs=bt_row)
    go.click(
        lambda *a: (yield from scan_run(ctx, *a)),
        inputs=[job, mode, symbols, timeframes, source, period, strategy, min_trades],
        outputs=[progress, table, note, job],
        show_progress="minimal",
    )
    cancel.click(lambda j: scan_cancel(ctx, j), inputs=job, outputs=note)

    def fill(cat: Catalog) -> list[Any]:
        syms = cat.default("scan_market", "symbols", ["NQ", "ES"])
        tfs = cat.default("scan_market", "timeframes", ["5m", "1h"])
        return [
            gr.update(choices=cat.symbols, value=[s for s in syms if s in cat.symbols]),
            gr.update(choices=cat.intervals, value=[t for t in tfs if t in cat.intervals]),
            pick(cat.sources, cat.default("scan_market", "source")),
            pick(list(cat.strategies), cat.default("scan_backtests", "strategy")),
        ]

    return TabView([symbols, timeframes, source, strategy], fill)
