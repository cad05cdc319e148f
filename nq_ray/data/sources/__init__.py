"""Market data sources. Each module exposes ``fetch(request, settings) -> bar frame``."""
