"""User files (``csv:<path>``, ``parquet:<path>``) and the bundled sample bars."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

from nq_ray.data.frames import normalize_bars
from nq_ray.domain.bars import EXCHANGE_TZ
from nq_ray.errors import DataUnavailableError, InvalidBarsError

# (root symbol, native interval) → bundled file; naive America/New_York wall times, bar-start labels
SAMPLE_FILES: dict[tuple[str, str], str] = {
    ("NQ", "5m"): "NQ_5min.csv",
    ("ES", "5m"): "ES_5min.csv",
    ("NQ", "1d"): "NQ_daily.csv",
}


def sample_path(name: str) -> Path:
    return Path(str(resources.files("nq_ray.data") / "samples" / name))


def read_sample(symbol: str, interval: str) -> pd.DataFrame:
    """The bundled file for (symbol, native interval) as a bar frame."""
    name = SAMPLE_FILES[(symbol, interval)]
    raw = pd.read_csv(sample_path(name))
    return normalize_bars(
        raw.drop(columns=["symbol"], errors="ignore"), source=f"sample:{name}", assume_tz=EXCHANGE_TZ
    )


def read_file(
    kind: str, path: str | Path, assume_tz: str | None = EXCHANGE_TZ, *, shown: str | None = None
) -> pd.DataFrame:
    """A user's CSV or Parquet file as a bar frame; naive times are read as ``assume_tz`` wall time.
    Errors name the file as ``shown`` when given (what an API caller sent, not the resolved server path)."""
    p = Path(path).expanduser()
    name = str(p) if shown is None else shown
    try:
        found, size = p.is_file(), p.stat().st_size if p.exists() else 0
    except OSError:  # a name too long, a permission denied on a parent: there is no file to read
        found, size = False, 0
    if not found:
        raise DataUnavailableError(f"{kind} file {name!r} does not exist; check the path", path=name)
    if size == 0:
        raise InvalidBarsError(
            f"{kind} file {name!r} is empty; expected a header datetime,open,high,low,close,volume and rows",
            path=name,
        )
    try:
        raw = pd.read_csv(p) if kind == "csv" else pd.read_parquet(p)
    except (ValueError, OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        why = str(exc) if shown is None else str(exc).replace(str(p), shown)
        raise InvalidBarsError(f"{kind} file {name!r} cannot be read: {why}", path=name) from exc
    return normalize_bars(raw, source=f"{kind}:{p.name}", assume_tz=assume_tz)
