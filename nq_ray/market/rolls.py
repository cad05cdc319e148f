"""Contract codes, expiries, the equity-index roll, and continuous series.

Equity-index futures (NQ, ES, YM, RTY and micros) list March, June, September and December (H M U Z)
and stop trading on the third Friday of the contract month (the prior business day if that Friday is an
exchange holiday). The usual roll is the *second Thursday before expiry* — eight days before the third
Friday, when volume moves to the next contract — configurable as ``roll_days_before_expiry``.
"""

from __future__ import annotations

import calendar as pycal
import itertools
import re
from datetime import date, timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel

from nq_ray.domain.contracts import MONTH_CODES, get_contract, normalize_symbol
from nq_ray.errors import InvalidArgumentError, InvalidBarsError, InvalidContractError
from nq_ray.market.sessions import schedule, session_date, session_dates, to_exchange_time

ROLL_DAYS_BEFORE_EXPIRY = 8  # Thursday of the week before the third-Friday expiry
_CODE = re.compile(r"^([A-Z0-9]+?)([FGHJKMNQUVXZ])(\d{1,2})$")


class ContractCode(BaseModel):
    """A dated contract such as NQH26: root, month letter, four-digit year."""

    root: str
    month_code: str
    year: int

    @property
    def month(self) -> int:
        return MONTH_CODES.index(self.month_code) + 1

    @property
    def code(self) -> str:
        return f"{self.root}{self.month_code}{self.year % 100:02d}"

    def __str__(self) -> str:
        return self.code


def parse_contract_code(code: str, *, reference_year: int | None = None) -> ContractCode:
    """``NQH26`` or ``NQH6`` → ContractCode(NQ, H, 2026). A one-digit year is the first year ending in
    that digit at or after ``reference_year − 1`` (default: 2020s decade rule → 2026 for 6)."""
    s = normalize_symbol(code)
    m = _CODE.match(s)
    if not m:
        raise InvalidContractError(
            f"cannot parse contract code {code!r}; expected root + month letter + year, e.g. NQH26 or NQH6",
            code=code,
        )
    root, month_code, yy = m.groups()
    contract = get_contract(root)  # raises unknown_symbol for an unknown root
    if month_code not in contract.months:
        raise InvalidContractError(
            f"{root} lists only months {', '.join(contract.months)}; {month_code} is not one of them",
            code=code,
        )
    if len(yy) == 2:
        year = 2000 + int(yy)
    else:
        ref = reference_year or 2025
        base = (ref - 1) // 10 * 10
        year = base + int(yy)
        if year < ref - 1:
            year += 10
    return ContractCode(root=contract.symbol, month_code=month_code, year=year)


def third_friday(year: int, month: int) -> date:
    """The third Friday of a month."""
    first_weekday, _ = pycal.monthrange(year, month)
    first_friday = 1 + (4 - first_weekday) % 7
    return date(year, month, first_friday + 14)


def expiry(code: str | ContractCode) -> date:
    """Last trading day: the third Friday of the contract month, or the session before it when that
    Friday is an exchange holiday (from the CME calendar). ``expiry("NQH26")`` → 2026-03-20."""
    c = code if isinstance(code, ContractCode) else parse_contract_code(code)
    fri = third_friday(c.year, c.month)
    sessions = schedule(fri - timedelta(days=10), fri).index
    if len(sessions) == 0:
        raise InvalidContractError(f"no CME sessions found before {fri}")
    return sessions[-1].date()


def roll_date(code: str | ContractCode, roll_days_before_expiry: int = ROLL_DAYS_BEFORE_EXPIRY) -> date:
    """Session date on which positions roll out of ``code`` (expiry − ``roll_days_before_expiry`` days,
    moved back to the previous session if that day is not one)."""
    if roll_days_before_expiry < 0:
        raise InvalidArgumentError("roll_days_before_expiry must be ≥ 0")
    target = expiry(code) - timedelta(days=roll_days_before_expiry)
    sessions = schedule(target - timedelta(days=10), target).index
    return sessions[-1].date()


def _quarterlies(root: str, start_year: int, end_year: int) -> list[ContractCode]:
    months = get_contract(root).months
    return [
        ContractCode(root=root, month_code=m, year=y) for y in range(start_year, end_year + 1) for m in months
    ]


def front_contract(
    symbol: str, at: Any, *, roll_days_before_expiry: int = ROLL_DAYS_BEFORE_EXPIRY
) -> ContractCode:
    """The contract a continuous front-month series holds at ``at`` (tz-aware): the nearest listed
    contract whose roll date is after ``at``'s session date. NQ on 2026-03-11 → NQH26; 2026-03-12 → NQM26."""
    root = get_contract(symbol).symbol
    d = session_date(to_exchange_time(at))
    for c in _quarterlies(root, d.year, d.year + 1):
        if d < roll_date(c, roll_days_before_expiry):
            return c
    raise InvalidArgumentError(f"no front contract found for {root} at {at}")  # pragma: no cover


class Roll(BaseModel):
    """One roll: from ``from_contract`` to ``to_contract`` at the open of session ``roll_date``."""

    from_contract: str
    to_contract: str
    roll_date: date
    expiry: date


def roll_schedule(
    symbol: str, start: Any, end: Any, *, roll_days_before_expiry: int = ROLL_DAYS_BEFORE_EXPIRY
) -> list[Roll]:
    """Every roll of ``symbol``'s front month with a roll date in [start, end]."""
    root = get_contract(symbol).symbol
    s, e = pd.Timestamp(start).date(), pd.Timestamp(end).date()
    if e < s:
        raise InvalidArgumentError(f"end {e} is before start {s}")
    codes = _quarterlies(root, s.year, e.year + 1)
    out = []
    for prev, nxt in itertools.pairwise(codes):
        rd = roll_date(prev, roll_days_before_expiry)
        if s <= rd <= e:
            out.append(Roll(from_contract=prev.code, to_contract=nxt.code, roll_date=rd, expiry=expiry(prev)))
    return out


def continuous(
    per_contract: dict[str, pd.DataFrame],
    method: Literal["difference", "ratio", "none"] = "difference",
    *,
    roll_days_before_expiry: int = ROLL_DAYS_BEFORE_EXPIRY,
) -> pd.DataFrame:
    """A continuous front-month series from per-contract bar frames keyed by contract code.

    Each contract supplies bars from the previous roll up to (not including) its own roll session.
    ``difference`` (back-adjusted): every earlier bar is shifted by (new − old) close at the last bar
    before the roll, so the newest prices are real and P&L in points is preserved; ``ratio``: earlier
    bars are multiplied by new/old, preserving percentage returns; ``none``: spliced as traded (the
    roll shows as a gap). Adds a ``contract`` column naming the source contract of each bar.
    """
    if method not in ("difference", "ratio", "none"):
        raise InvalidArgumentError(f"method must be difference, ratio or none, not {method!r}")
    if not per_contract:
        raise InvalidBarsError("no contracts given")
    codes = sorted((parse_contract_code(k) for k in per_contract), key=lambda c: (c.year, c.month))
    pieces: list[pd.DataFrame] = []
    for i, c in enumerate(codes):
        bars = per_contract[_key_for(per_contract, c)]
        sd = pd.DatetimeIndex(session_dates(bars.index))
        lo = pd.Timestamp(roll_date(codes[i - 1], roll_days_before_expiry)) if i > 0 else None
        hi = pd.Timestamp(roll_date(c, roll_days_before_expiry)) if i < len(codes) - 1 else None
        keep = np.ones(len(bars), dtype=bool)
        if lo is not None:
            keep &= sd >= lo
        if hi is not None:
            keep &= sd < hi
        piece = bars.loc[keep].copy()
        piece["contract"] = c.code
        pieces.append(piece)
    # adjust from the newest piece backwards
    price_cols = ["open", "high", "low", "close"]
    for i in range(len(pieces) - 2, -1, -1):
        old, new_code = pieces[i], codes[i + 1]
        if old.empty:
            continue
        new_bars = per_contract[_key_for(per_contract, new_code)]
        last_t = old.index[-1]
        at = new_bars.loc[new_bars.index <= last_t]
        if at.empty:
            raise InvalidBarsError(
                f"{new_code.code} has no bar at or before {last_t} to measure the roll gap"
            )
        new_close, old_close = float(at["close"].iloc[-1]), float(old["close"].iloc[-1])
        if method == "difference":
            for j in range(i + 1):
                pieces[j][price_cols] = pieces[j][price_cols] + (new_close - old_close)
        elif method == "ratio":
            for j in range(i + 1):
                pieces[j][price_cols] = pieces[j][price_cols] * (new_close / old_close)
    out = pd.concat(pieces)
    return out[~out.index.duplicated(keep="last")].sort_index()


def _key_for(per_contract: dict[str, pd.DataFrame], c: ContractCode) -> str:
    for k in per_contract:
        if parse_contract_code(k).code == c.code:
            return k
    raise InvalidBarsError(f"no bars for {c.code}")  # pragma: no cover
