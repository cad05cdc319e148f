"""Micros ride on their parent's price; exposure is worst-case over working orders."""

from __future__ import annotations

from nq_ray.risk.exposure import lookup_price, underlying_root, worst_case_contracts


def test_micros_map_to_their_parent():
    assert [underlying_root(s) for s in ("MNQ", "MES", "MYM", "M2K", "NQ", "es")] == [
        "NQ",
        "ES",
        "YM",
        "RTY",
        "NQ",
        "ES",
    ]


def test_lookup_price_falls_back_to_parent_and_child():
    assert lookup_price({"NQ": 20_000.0}, "MNQ") == 20_000.0
    assert lookup_price({"MES": 6_000.0}, "ES") == 6_000.0
    assert lookup_price({"NQ": 20_000.0}, "ES") is None


def test_worst_case_contracts():
    """Long 2 with a working sell of 5: fills → −3, doesn't → 2; worst case 3. Working buy 3 → 5."""
    assert worst_case_contracts(2, -5) == 3
    assert worst_case_contracts(2, 3) == 5
