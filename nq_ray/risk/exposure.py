"""Contract exposure helpers shared by the gate and VaR: micros ride on their parent's price."""

from __future__ import annotations

from collections.abc import Mapping

from nq_ray.domain.contracts import normalize_symbol

#: A micro tracks the same index as its parent: same price, smaller point value.
PARENT_ROOT: dict[str, str] = {"MNQ": "NQ", "MES": "ES", "MYM": "YM", "M2K": "RTY"}


def underlying_root(symbol: str) -> str:
    """The root whose price and returns ``symbol`` follows: ``MNQ`` → ``NQ``, ``NQ`` → ``NQ``."""
    s = normalize_symbol(symbol)
    return PARENT_ROOT.get(s, s)


def worst_case_contracts(position: int, working: int) -> int:
    """|net position| if the working orders all fill or none does, whichever is larger."""
    return max(abs(position), abs(position + working))


def lookup_price(prices: Mapping[str, float], symbol: str) -> float | None:
    """The price of ``symbol`` from ``prices``, falling back to its parent's (MNQ → NQ) and back."""
    s = normalize_symbol(symbol)
    if s in prices:
        return float(prices[s])
    root = underlying_root(s)
    if root in prices:
        return float(prices[root])
    for micro, parent in PARENT_ROOT.items():  # a micro's price also prices its parent
        if parent == s and micro in prices:
            return float(prices[micro])
    return None
