"""Plotly figures built from API answers (no analytics here: the numbers come from the tools).

Colours read on both the light and the dark theme: transparent backgrounds, mid-grey text and grid.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

NY = "America/New_York"
UP, DOWN = "#26a69a", "#ef5350"
INK, GRID = "#8b95a7", "rgba(139,149,167,0.18)"
BLUE, ORANGE, PURPLE, GOLD = "#42a5f5", "#ffa726", "#ab47bc", "#d4a017"


def _style(fig: go.Figure, height: int, title: str | None = None) -> go.Figure:
    fig.update_layout(
        height=height,
        margin={"l": 48, "r": 12, "t": 36 if title else 12, "b": 28},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        font={"color": INK, "size": 11, "family": "Inter, system-ui, sans-serif"},
        legend={
            "orientation": "h",
            "y": 1.0,
            "x": 1,
            "xanchor": "right",
            "yanchor": "bottom",
            "font": {"size": 10},
        },
        hovermode="x unified",
        title={"text": title, "x": 0.01, "font": {"size": 13}} if title else None,
        uirevision="keep",
    )
    fig.update_xaxes(gridcolor=GRID, zeroline=False, showspikes=True, spikethickness=1)
    fig.update_yaxes(gridcolor=GRID, zeroline=False)
    return fig


def empty(message: str, height: int = 260) -> go.Figure:
    """A blank chart that says why it is blank."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, font={"size": 13, "color": INK}, x=0.5, y=0.5)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _style(fig, height)


def bars_frame(bars: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(bars)
    if df.empty:
        return df
    df["time"] = pd.to_datetime(df["time"], utc=True).dt.tz_convert(NY).dt.tz_localize(None)
    return df


def _gap_breaks(times: pd.Series) -> list[dict[str, Any]]:
    """Hide the halts, weekends and holidays (gaps over twice the bar spacing) from the time axis."""
    if len(times) < 3:
        return []
    step = times.diff().median()
    breaks = []
    for prev, nxt in zip(times.iloc[:-1], times.iloc[1:], strict=True):
        gap = nxt - prev
        if gap > 2 * step:
            breaks.append({"values": [prev + step], "dvalue": (gap - step).total_seconds() * 1000})
    return breaks


def _rth_spans(times: pd.Series) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Regular trading hours (09:30-16:00 New York) of each day in the window."""
    spans = []
    for day in sorted({t.normalize() for t in times}):
        if day.weekday() >= 5:
            continue
        a, b = day + pd.Timedelta(hours=9, minutes=30), day + pd.Timedelta(hours=16)
        lo, hi = max(a, times.iloc[0]), min(b, times.iloc[-1])
        if lo < hi:
            spans.append((lo, hi))
    return spans


def indicator_label(title: str, params: dict[str, dict[str, Any]] | None, name: str, *keys: str) -> str:
    """``"EMA 20"`` from the parameters the server used (``{"ema": {"period": 20}}``), ``"EMA"`` without."""
    used = (params or {}).get(name) or {}
    values = [f"{used[k]:g}" if isinstance(used.get(k), int | float) else None for k in keys]
    shown = "/".join(v for v in values if v is not None)
    return f"{title} {shown}" if shown else title


def market_figure(
    bars: list[dict[str, Any]],
    recent: dict[str, list[float]] | None = None,
    levels: list[tuple[str, float]] | None = None,
    title: str | None = None,
    height: int = 640,
    params: dict[str, dict[str, Any]] | None = None,
) -> go.Figure:
    """Candles with EMA / VWAP / Bollinger, RTH shading and key levels; volume, RSI and MACD panes.
    ``params`` (the indicators tool's ``params``) name the lines: "EMA 20", "Bollinger 20/2", "RSI 14"."""
    df = bars_frame(bars)
    if df.empty:
        return empty("no bars for this symbol and range", height)
    recent = recent or {}
    fig = make_subplots(
        rows=4,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.02,
        row_heights=[0.56, 0.12, 0.14, 0.18],
    )
    x = df["time"]
    fig.add_trace(
        go.Candlestick(
            x=x,
            open=df["open"],
            high=df["high"],
            low=df["low"],
            close=df["close"],
            name="price",
            increasing={"line": {"color": UP, "width": 1}, "fillcolor": UP},
            decreasing={"line": {"color": DOWN, "width": 1}, "fillcolor": DOWN},
            showlegend=False,
        ),
        row=1,
        col=1,
    )

    def series(key: str) -> list[float] | None:
        vals = recent.get(key)
        if not vals:
            return None
        vals = list(vals)[-len(df) :]
        return [None] * (len(df) - len(vals)) + vals  # type: ignore[list-item]

    if (upper := series("bollinger_upper")) and (lower := series("bollinger_lower")):
        fig.add_trace(
            go.Scatter(x=x, y=upper, name="BB upper", line={"color": PURPLE, "width": 1}, opacity=0.6),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=lower,
                name=indicator_label("Bollinger", params, "bollinger", "period", "std"),
                line={"color": PURPLE, "width": 1},
                fill="tonexty",
                fillcolor="rgba(171,71,188,0.07)",
                opacity=0.6,
            ),
            row=1,
            col=1,
        )
    ema = indicator_label("EMA", params, "ema", "period")
    for key, label, colour in (("ema", ema, BLUE), ("vwap", "VWAP", ORANGE)):
        if (vals := series(key)) is not None:
            fig.add_trace(
                go.Scatter(x=x, y=vals, name=label, line={"color": colour, "width": 1.4}), row=1, col=1
            )
    for name, price in levels or []:
        fig.add_hline(
            y=price,
            line={"color": GOLD, "width": 1, "dash": "dot"},
            annotation_text=f"{name} {price:,.2f}",
            annotation_position="top right",
            annotation_font={"size": 9, "color": GOLD},
            row=1,
            col=1,
        )
    for lo, hi in _rth_spans(x):
        fig.add_vrect(x0=lo, x1=hi, fillcolor="rgba(66,165,245,0.07)", line_width=0, row="all", col=1)
    colours = [UP if c >= o else DOWN for o, c in zip(df["open"], df["close"], strict=True)]
    fig.add_trace(
        go.Bar(x=x, y=df["volume"], marker_color=colours, name="volume", showlegend=False, opacity=0.7),
        row=2,
        col=1,
    )
    if (rsi := series("rsi")) is not None:
        fig.add_trace(
            go.Scatter(
                x=x,
                y=rsi,
                name=indicator_label("RSI", params, "rsi", "period"),
                line={"color": GOLD, "width": 1.2},
            ),
            row=3,
            col=1,
        )
        for level in (30, 70):
            fig.add_hline(y=level, line={"color": INK, "width": 0.6, "dash": "dash"}, row=3, col=1)
    if (hist := series("macd_hist")) is not None:
        fig.add_trace(
            go.Bar(
                x=x,
                y=hist,
                name="MACD hist",
                marker_color=[UP if (h or 0) >= 0 else DOWN for h in hist],
                showlegend=False,
            ),
            row=4,
            col=1,
        )
    if (macd := series("macd_macd")) is not None:
        fig.add_trace(go.Scatter(x=x, y=macd, name="MACD", line={"color": BLUE, "width": 1}), row=4, col=1)
    if (signal := series("macd_signal")) is not None:
        fig.add_trace(
            go.Scatter(x=x, y=signal, name="signal", line={"color": ORANGE, "width": 1}), row=4, col=1
        )
    fig.update_xaxes(rangeslider_visible=False, rangebreaks=_gap_breaks(x))
    fig.update_yaxes(title_text="price", row=1, col=1, side="right")
    fig.update_yaxes(title_text="vol", row=2, col=1, side="right")
    fig.update_yaxes(title_text="RSI", row=3, col=1, range=[0, 100], side="right")
    fig.update_yaxes(title_text="MACD", row=4, col=1, side="right")
    fig.add_annotation(
        text="shaded: RTH 09:30-16:00 ET · unshaded: Globex · halts and weekends hidden",
        xref="paper",
        yref="paper",
        x=0,
        y=-0.045,
        showarrow=False,
        font={"size": 9, "color": INK},
        xanchor="left",
    )
    fig = _style(fig, height, title)
    fig.update_layout(
        margin={"t": 36},
        legend={
            "x": 0.005,
            "y": 0.995,
            "xanchor": "left",
            "yanchor": "top",
            "bgcolor": "rgba(139,149,167,0.10)",
        },
    )
    return fig


def equity_figure(curve: list[list[Any]], title: str = "Equity and drawdown", height: int = 420) -> go.Figure:
    """Equity (USD) with its drawdown from the running peak underneath."""
    if not curve:
        return empty("no equity curve", height)
    df = pd.DataFrame(curve, columns=["time", "equity"])
    df["time"] = pd.to_datetime(df["time"], utc=True).dt.tz_convert(NY).dt.tz_localize(None)
    drawdown = df["equity"] - df["equity"].cummax()
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.68, 0.32], vertical_spacing=0.04)
    fig.add_trace(
        go.Scatter(x=df["time"], y=df["equity"], name="equity", line={"color": BLUE, "width": 1.6}),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=df["time"],
            y=drawdown,
            name="drawdown",
            fill="tozeroy",
            line={"color": DOWN, "width": 1},
            fillcolor="rgba(239,83,80,0.25)",
        ),
        row=2,
        col=1,
    )
    fig.update_yaxes(title_text="equity $", row=1, col=1, tickformat=",.0f")
    fig.update_yaxes(title_text="drawdown $", row=2, col=1, tickformat=",.0f")
    return _style(fig, height, title)


def bars_chart(labels: list[str], values: list[float], title: str, height: int = 300) -> go.Figure:
    if not labels:
        return empty("nothing to compare", height)
    fig = go.Figure(
        go.Bar(
            x=labels,
            y=values,
            marker_color=[UP if v >= 0 else DOWN for v in values],
            text=[f"{v:,.2f}" for v in values],
            textposition="outside",
        )
    )
    return _style(fig, height, title)


def heatmap(rows: list[dict[str, Any]], x_key: str, y_key: str, metric: str, height: int = 360) -> go.Figure:
    """The sweep's metric over a two-parameter grid."""
    df = pd.DataFrame(rows)
    if df.empty or x_key not in df or y_key not in df or metric not in df:
        return empty("no sweep results with two parameters", height)
    grid = df.pivot_table(index=y_key, columns=x_key, values=metric, aggfunc="max").sort_index()
    fig = go.Figure(
        go.Heatmap(
            z=grid.values,
            x=[str(c) for c in grid.columns],
            y=[str(i) for i in grid.index],
            colorscale="RdYlGn",
            colorbar={"title": metric},
            text=[[f"{v:.2f}" if pd.notna(v) else "" for v in row] for row in grid.values],
            texttemplate="%{text}",
        )
    )
    fig.update_xaxes(title_text=x_key, type="category")
    fig.update_yaxes(title_text=y_key, type="category")
    return _style(fig, height, f"{metric} by {x_key} × {y_key}")


def gauge(value: float, limit: float, title: str, height: int = 200) -> go.Figure:
    """How much of a loss limit is used (0 = none, limit = breached)."""
    limit = max(limit, 1e-9)
    fig = go.Figure(
        go.Indicator(
            mode="gauge+number",
            value=value,
            number={"prefix": "$", "valueformat": ",.0f"},
            title={"text": title, "font": {"size": 12}},
            gauge={
                "axis": {"range": [0, limit], "tickformat": ",.0f"},
                "bar": {"color": DOWN if value >= 0.8 * limit else BLUE},
                "steps": [
                    {"range": [0, 0.5 * limit], "color": "rgba(38,166,154,0.18)"},
                    {"range": [0.5 * limit, 0.8 * limit], "color": "rgba(255,167,38,0.22)"},
                    {"range": [0.8 * limit, limit], "color": "rgba(239,83,80,0.25)"},
                ],
                "threshold": {"line": {"color": DOWN, "width": 3}, "value": limit},
            },
        )
    )
    fig = _style(fig, height)
    fig.update_layout(margin={"l": 36, "r": 44, "t": 52, "b": 8})
    return fig
