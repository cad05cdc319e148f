"""``nq_ray_ui.charts``: line names come from the parameters the server used."""

from __future__ import annotations

from nq_ray_ui.charts import indicator_label, market_figure


def test_indicator_label_shows_the_servers_parameters() -> None:
    params = {"ema": {"period": 50}, "bollinger": {"period": 20, "std": 2.5}}

    assert indicator_label("EMA", params, "ema", "period") == "EMA 50"
    assert indicator_label("Bollinger", params, "bollinger", "period", "std") == "Bollinger 20/2.5"
    assert indicator_label("RSI", params, "rsi", "period") == "RSI"  # not asked for: no made-up number
    assert indicator_label("RSI", None, "rsi", "period") == "RSI"


def test_market_figure_names_its_lines_from_params() -> None:
    bars = [
        {
            "time": f"2026-03-09T1{i}:00:00-04:00",
            "open": 1.0,
            "high": 2.0,
            "low": 0.5,
            "close": 1.5,
            "volume": 9,
        }
        for i in range(3)
    ]

    fig = market_figure(bars, {"ema": [1.0, 1.1, 1.2]}, params={"ema": {"period": 9}})

    assert "EMA 9" in {t.name for t in fig.data}
