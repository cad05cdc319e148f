"""Loading packs: the bundled ones, a user's own from a folder, and every bad input named by file, line and
rule."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from nq_ray.errors import ConfigError, InvalidArgumentError
from nq_ray.propfirm.model import MaxContracts, MaxLoss
from nq_ray.propfirm.packs import known_pack_names, list_packs, load_pack

REQUIRED = {
    "topstep-50k",
    "topstep-100k",
    "topstep-150k",
    "topstep-express-50k",
    "apex-50k",
    "apex-100k",
    "apex-pa-50k",
    "tpt-50k",
}

USER_PACK = """\
name: my-firm-25k
firm: My Firm
program: Evaluation
phase: evaluation
account_size_usd: 25000
starting_balance_usd: 25000
version: 1
checked: 2026-12-01
sources: [https://example.com/rules]
rules:
  - kind: profit_target
    name: target
    amount_usd: 1500
    source: https://example.com/rules
    checked: 2026-12-01
  - kind: max_loss
    name: drawdown
    amount_usd: 1500
    trailing: eod_balance
    stop_at_usd: 25000
    source: https://example.com/rules
    checked: 2026-12-01
  - kind: flat_by
    name: flat
    time: 16:10
    source: https://example.com/rules
    checked: 2026-12-01
"""


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_every_required_pack_is_bundled_and_valid():
    assert set(known_pack_names()) >= REQUIRED
    for row in list_packs():
        pack = load_pack(row["name"])
        assert all(r.source.startswith("https://") for r in pack.rules)
        assert isinstance(pack.rule("max_loss"), MaxLoss)


def test_topstep_50k_numbers():
    pack = load_pack("topstep-50k")
    mll = pack.rule("max_loss")
    assert (mll.amount_usd, mll.trailing, mll.stop_at_usd) == (2_000, "eod_balance", 50_000)
    assert pack.rule("daily_loss").consequence == "stop_day"
    assert pack.rule("profit_target").amount_usd == 3_000
    cap = pack.rule("max_contracts")
    assert isinstance(cap, MaxContracts) and cap.minis == 5 and cap.weight("MNQ") == 1  # micros = full lots


def test_apex_is_intraday_and_stops_at_start_plus_100():
    mll = load_pack("apex-50k").rule("max_loss")
    assert (mll.trailing, mll.amount_usd, mll.stop_at_usd) == ("intraday_equity", 2_500, 50_100)
    # the PA trades half size until its end-of-day balance is past 52,600
    cap = load_pack("apex-pa-50k").rule("max_contracts")
    assert cap.cap_for(52_600) == 5 and cap.cap_for(52_601) == 10


def test_a_user_pack_loads_from_packs_dir(tmp_path):
    _write(tmp_path, "my-firm-25k", USER_PACK)
    assert "my-firm-25k" in known_pack_names(extra_dirs=[tmp_path])
    pack = load_pack("my-firm-25k", extra_dirs=[tmp_path])
    assert pack.firm == "My Firm" and pack.rule("flat_by").time.strftime("%H:%M") == "16:10"
    assert load_pack(tmp_path / "my-firm-25k.yaml") == pack  # by path too


def test_unknown_name_lists_the_known_packs():
    with pytest.raises(InvalidArgumentError) as err:
        load_pack("topstep-75k")
    assert "topstep-50k" in err.value.message and "apex-pa-50k" in err.value.message
    assert "topstep-50k" in err.value.details["known"]


def test_a_bad_parameter_names_file_line_and_rule(tmp_path):
    # amount_usd of rule "drawdown" is on line 18 of the file
    path = _write(
        tmp_path,
        "my-firm-25k",
        USER_PACK.replace("amount_usd: 1500\n    trailing", "amount_usd: -5\n    trailing"),
    )
    with pytest.raises(ConfigError) as err:
        load_pack("my-firm-25k", extra_dirs=[tmp_path])
    assert err.value.details["line"] == 18 and err.value.details["rule"] == "drawdown"
    assert f"{path}:18:" in err.value.message and "greater than 0" in err.value.message


def test_an_unknown_kind_names_the_rule(tmp_path):
    _write(tmp_path, "my-firm-25k", USER_PACK.replace("kind: flat_by", "kind: flat_before"))
    with pytest.raises(ConfigError) as err:
        load_pack("my-firm-25k", extra_dirs=[tmp_path])
    assert err.value.details["rule"] == "flat" and err.value.details["line"] == 23


def test_two_max_loss_rules_are_refused_with_the_line_of_one(tmp_path):
    extra = """\
  - kind: max_loss
    name: second_drawdown
    amount_usd: 1000
    trailing: static
    source: https://example.com/rules
    checked: 2026-12-01
"""
    _write(tmp_path, "my-firm-25k", USER_PACK + extra)
    with pytest.raises(ConfigError) as err:
        load_pack("my-firm-25k", extra_dirs=[tmp_path])
    assert "drawdown, second_drawdown are both of kind max_loss" in err.value.message
    assert err.value.details["rule"] == "drawdown" and err.value.details["line"] == 16


def test_daily_loss_at_least_max_loss_is_refused(tmp_path):
    extra = """\
  - kind: daily_loss
    name: daily
    amount_usd: 1500
    source: https://example.com/rules
    checked: 2026-12-01
"""
    _write(tmp_path, "my-firm-25k", USER_PACK + extra)
    with pytest.raises(ConfigError, match="daily loss \\$1,500 ≥ max loss \\$1,500") as err:
        load_pack("my-firm-25k", extra_dirs=[tmp_path])
    assert err.value.details["rule"] == "daily"


def test_scaling_steps_out_of_order_are_refused_at_their_line(tmp_path):
    extra = """\
  - kind: max_contracts
    name: size
    minis: 3
    scaling:
      - {min_balance_usd: 26000, minis: 2}
      - {min_balance_usd: 25000, minis: 3}
    source: https://example.com/rules
    checked: 2026-12-01
"""
    _write(tmp_path, "my-firm-25k", USER_PACK + extra)
    with pytest.raises(ConfigError, match="must rise in min_balance_usd") as err:
        load_pack("my-firm-25k", extra_dirs=[tmp_path])
    assert err.value.details["rule"] == "size" and err.value.details["line"] == 28


def test_a_key_given_twice_is_refused_not_merged(tmp_path):
    _write(
        tmp_path,
        "my-firm-25k",
        USER_PACK.replace(
            "amount_usd: 1500\n    source", "amount_usd: 1500\n    amount_usd: 900\n    source"
        ),
    )
    with pytest.raises(ConfigError, match="'amount_usd' appears twice") as err:
        load_pack("my-firm-25k", extra_dirs=[tmp_path])
    assert err.value.details["line"] == 14 and err.value.details["rule"] == "target"


def test_yaml_syntax_error_names_the_line(tmp_path):
    _write(tmp_path, "my-firm-25k", USER_PACK.replace("firm: My Firm", "firm: [My Firm"))
    with pytest.raises(ConfigError, match="not valid YAML") as err:
        load_pack("my-firm-25k", extra_dirs=[tmp_path])
    assert err.value.details["line"] is not None


def test_name_must_match_the_file(tmp_path):
    _write(tmp_path, "other-name", USER_PACK)
    with pytest.raises(ConfigError, match="must be its file name 'other-name'") as err:
        load_pack("other-name", extra_dirs=[tmp_path])
    assert err.value.details["line"] == 1


def test_a_user_pack_cannot_shadow_a_bundled_one(tmp_path):
    _write(tmp_path, "topstep-50k", USER_PACK.replace("my-firm-25k", "topstep-50k"))
    with pytest.raises(ConfigError, match="two packs named 'topstep-50k'"):
        load_pack("topstep-50k", extra_dirs=[tmp_path])
