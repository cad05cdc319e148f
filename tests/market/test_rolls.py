"""Contract codes, expiries, the equity-index roll and continuous series."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from nq_ray.errors import InvalidContractError, UnknownSymbolError
from nq_ray.market import rolls as R


def et(s: str) -> pd.Timestamp:
    return pd.Timestamp(s, tz="America/New_York")


def test_nqh26_expires_on_the_third_friday() -> None:
    assert R.expiry("NQH26") == date(2026, 3, 20)


def test_one_digit_year_code_is_accepted() -> None:
    assert R.expiry("NQH6") == date(2026, 3, 20)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("ESM26", date(2026, 6, 19)),
        ("NQU26", date(2026, 9, 18)),
        ("RTYZ26", date(2026, 12, 18)),
        ("MNQH27", date(2027, 3, 19)),
    ],
)
def test_quarterly_expiries(code: str, expected: date) -> None:
    assert R.expiry(code) == expected


def test_roll_is_second_thursday_before_expiry() -> None:
    """NQH26 expires Fri 2026-03-20; the roll is Thu 2026-03-12 (8 days earlier)."""
    assert R.roll_date("NQH26") == date(2026, 3, 12)


def test_roll_offset_is_configurable() -> None:
    assert R.roll_date("NQH26", roll_days_before_expiry=1) == date(2026, 3, 19)


def test_front_contract_switches_on_the_roll_session() -> None:
    """The session of Thu 2026-03-12 opens Wed 18:00: from then on the front month is June."""
    assert R.front_contract("NQ", et("2026-03-11 16:00")).code == "NQH26"
    assert R.front_contract("NQ", et("2026-03-11 18:00")).code == "NQM26"
    assert R.front_contract("ES", et("2026-12-31 10:00")).code == "ESH27"


def test_roll_schedule_lists_a_year_of_rolls() -> None:
    rolls = R.roll_schedule("NQ", "2026-01-01", "2026-12-31")
    assert [(r.from_contract, r.to_contract, r.roll_date) for r in rolls] == [
        ("NQH26", "NQM26", date(2026, 3, 12)),
        ("NQM26", "NQU26", date(2026, 6, 11)),
        ("NQU26", "NQZ26", date(2026, 9, 10)),
        ("NQZ26", "NQH27", date(2026, 12, 10)),
    ]


def test_bad_codes_are_typed_errors() -> None:
    with pytest.raises(InvalidContractError):
        R.parse_contract_code("NQ2026")
    with pytest.raises(InvalidContractError, match="lists only months"):
        R.parse_contract_code("NQF26")
    with pytest.raises(UnknownSymbolError):
        R.parse_contract_code("ZZH26")


def _contract_bars(start: str, end: str, price: float) -> pd.DataFrame:
    idx = pd.date_range(et(start), et(end), freq="1D")
    p = np.full(len(idx), price)
    return pd.DataFrame({"open": p, "high": p + 1, "low": p - 1, "close": p, "volume": 1.0}, index=idx)


def test_back_adjusted_series_shifts_history_by_the_roll_gap() -> None:
    """H at 100, M at 110 (+10 carry): before the roll, difference-adjusted prices are 110; after, 110."""
    h = _contract_bars("2026-03-01 12:00", "2026-03-19 12:00", 100.0)
    m = _contract_bars("2026-03-01 12:00", "2026-04-10 12:00", 110.0)
    out = R.continuous({"NQH26": h, "NQM26": m}, method="difference")
    assert (out["close"] == 110.0).all()
    assert out.loc[out.index < et("2026-03-11 18:00"), "contract"].eq("NQH26").all()
    assert out.loc[out.index >= et("2026-03-12 00:00"), "contract"].eq("NQM26").all()


def test_ratio_adjusted_series_scales_history() -> None:
    h = _contract_bars("2026-03-01 12:00", "2026-03-19 12:00", 100.0)
    m = _contract_bars("2026-03-01 12:00", "2026-04-10 12:00", 110.0)
    out = R.continuous({"NQH26": h, "NQM26": m}, method="ratio")
    before, after = out["contract"] == "NQH26", out["contract"] == "NQM26"
    assert np.allclose(out.loc[before, "high"], 101.0 * 1.1)  # history × 110/100
    assert np.allclose(out.loc[after, "high"], 111.0)  # the newest prices are real


def test_unadjusted_series_keeps_the_gap() -> None:
    h = _contract_bars("2026-03-01 12:00", "2026-03-19 12:00", 100.0)
    m = _contract_bars("2026-03-01 12:00", "2026-04-10 12:00", 110.0)
    out = R.continuous({"NQH26": h, "NQM26": m}, method="none")
    assert set(out["close"]) == {100.0, 110.0}


def test_sample_data_shows_the_march_roll_gap(nq_5m: pd.DataFrame, es_5m: pd.DataFrame) -> None:
    """The bundled series are continuous as traded: their largest session-open gap is the March roll week
    (session of 2026-03-09), in NQ and in ES alike."""
    for bars in (nq_5m, es_5m):
        gap = (bars["open"] - bars["close"].shift()).abs()
        assert gap.idxmax().strftime("%Y-%m-%d %H") == "2026-03-08 18"
