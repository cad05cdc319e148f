"""The rule models: contradictions refused, each with a message naming the rule."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from nq_ray.propfirm.model import MaxContracts
from tests.propfirm.conftest import make_pack, rule


def test_two_max_loss_rules_are_refused_not_merged():
    with pytest.raises(ValidationError, match="mll_a, mll_b are both of kind max_loss"):
        make_pack(
            rule("max_loss", "mll_a", amount_usd=2_000, trailing="static"),
            rule("max_loss", "mll_b", amount_usd=3_000, trailing="eod_balance"),
        )


def test_daily_loss_at_or_above_max_loss_is_refused():
    with pytest.raises(ValidationError, match="daily loss \\$2,000 ≥ max loss \\$2,000"):
        make_pack(
            rule("max_loss", amount_usd=2_000, trailing="static"),
            rule("daily_loss", amount_usd=2_000),
        )


def test_profit_target_must_be_positive():
    with pytest.raises(ValidationError, match="greater than 0"):
        make_pack(rule("profit_target", amount_usd=0))


def test_scaling_steps_out_of_order_are_refused():
    with pytest.raises(ValidationError, match="must rise in min_balance_usd"):
        make_pack(
            rule(
                "max_contracts",
                minis=5,
                scaling=[{"min_balance_usd": 51_500, "minis": 3}, {"min_balance_usd": 50_000, "minis": 2}],
            )
        )


def test_duplicate_rule_names_are_refused():
    with pytest.raises(ValidationError, match="repeated: x"):
        make_pack(rule("profit_target", "x", amount_usd=3_000), rule("min_trading_days", "x", days=2))


def test_scaling_cap_follows_the_day_start_balance():
    # Topstep-like 50K plan: 2 minis below 51,500, 3 from 51,500, 5 from 52,000
    r = MaxContracts.model_validate(
        rule(
            "max_contracts",
            minis=5,
            scaling=[
                {"min_balance_usd": 50_000, "minis": 2},
                {"min_balance_usd": 51_500, "minis": 3},
                {"min_balance_usd": 52_000, "minis": 5},
            ],
        )
    )
    assert [r.cap_for(b) for b in (49_000, 50_000, 51_499.99, 51_500, 51_999, 52_000, 60_000)] == [
        2,
        2,
        2,
        3,
        3,
        5,
        5,
    ]
    assert r.weight("MNQ") == pytest.approx(0.1) and r.weight("NQ") == 1


def test_flat_by_reads_an_unquoted_yaml_time():
    # YAML 1.1 reads 16:10 as 16*60+10 = 970
    pack = make_pack(rule("flat_by", time=970))
    assert pack.rules[0].time.strftime("%H:%M") == "16:10"
