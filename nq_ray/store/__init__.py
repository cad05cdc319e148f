"""Persistence and cache."""
