"""Contract specs: the money maths traders check by hand."""

import pytest

from nq_ray.domain.contracts import CONTRACTS, get_contract
from nq_ray.errors import UnknownSymbolError


def test_nq_tick_is_quarter_point_worth_five_dollars() -> None:
    """NQ: 0.25 pts tick, $5.00 a tick, $20 a point."""
    nq = get_contract("NQ")
    assert (nq.tick_size, nq.tick_value, nq.point_value) == (0.25, 5.0, 20.0)


def test_mnq_is_one_tenth_of_nq() -> None:
    """MNQ: $2 a point, $0.50 a tick."""
    mnq = get_contract("MNQ")
    assert (mnq.point_value, mnq.tick_value) == (2.0, 0.5)


@pytest.mark.parametrize(
    ("symbol", "tick", "point", "exchange"),
    [
        ("ES", 0.25, 50.0, "CME"),
        ("MES", 0.25, 5.0, "CME"),
        ("YM", 1.0, 5.0, "CBOT"),
        ("MYM", 1.0, 0.5, "CBOT"),
        ("RTY", 0.1, 50.0, "CME"),
        ("M2K", 0.1, 5.0, "CME"),
    ],
)
def test_other_equity_index_specs(symbol: str, tick: float, point: float, exchange: str) -> None:
    c = get_contract(symbol)
    assert (c.tick_size, c.point_value, c.exchange, c.months) == (tick, point, exchange, "HMUZ")


def test_yahoo_alias_and_dated_code_resolve_to_root() -> None:
    assert get_contract("NQ=F").symbol == "NQ"
    assert get_contract("nqh26").symbol == "NQ"
    assert get_contract("MNQM6").symbol == "MNQ"


def test_unknown_symbol_lists_the_known_ones() -> None:
    with pytest.raises(UnknownSymbolError) as info:
        get_contract("ZZ")
    assert info.value.code == "unknown_symbol"
    assert all(s in info.value.message for s in CONTRACTS)


def test_pnl_is_points_times_point_value_times_contracts() -> None:
    """A 12.5-point move on 3 NQ = 12.5 × 20 × 3 = $750."""
    assert get_contract("NQ").pnl_usd(12.5, 3) == 750.0


@pytest.mark.parametrize(
    ("price", "mode", "expected"),
    [(100.1, "nearest", 100.0), (100.13, "nearest", 100.25), (100.1, "up", 100.25), (100.24, "down", 100.0)],
)
def test_round_price_to_tick(price: float, mode: str, expected: float) -> None:
    assert get_contract("NQ").round_price(price, mode) == expected


def test_is_on_tick() -> None:
    nq, rty = get_contract("NQ"), get_contract("RTY")
    assert nq.is_on_tick(24613.75) and not nq.is_on_tick(24613.1)
    assert rty.is_on_tick(2045.3) and not rty.is_on_tick(2045.35)
