"""Market data sources.

Each remote module exposes ``fetch(root, interval, start, end, settings=...) -> bar frame``.
"""
