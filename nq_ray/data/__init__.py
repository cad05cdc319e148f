"""Market data: one entry point (``load_bars``), validation at the door, session-aware resampling."""

from nq_ray.data.frames import normalize_bars
from nq_ray.data.loader import SOURCES, load_bars
from nq_ray.data.resample import resample_bars

__all__ = ["SOURCES", "load_bars", "normalize_bars", "resample_bars"]
