"""Live routing stays off unless mode=live, confirm_live and credentials are all set."""

from __future__ import annotations

from typing import Any

import pytest

from nq_ray.config import Settings
from nq_ray.errors import ConfigError, CredentialsMissingError, ProviderUnavailableError
from nq_ray.execution.live import LiveRouter, live_router

CREDS = {"username": "u", "password": "p", "cid": 7, "sec": "s"}


def test_paper_mode_refuses_live_routing() -> None:
    with pytest.raises(ConfigError, match="NQ_EXECUTION__MODE=live"):
        live_router(Settings())


def test_live_mode_without_confirmation_is_refused() -> None:
    with pytest.raises(ConfigError, match="CONFIRM_LIVE"):
        live_router(Settings(execution={"mode": "live"}))


def test_live_mode_without_credentials_is_refused() -> None:
    with pytest.raises(CredentialsMissingError, match="Tradovate credentials"):
        live_router(Settings(execution={"mode": "live", "confirm_live": True}))


def test_everything_set_but_no_adapter_is_refused() -> None:
    s = Settings(execution={"mode": "live", "confirm_live": True}, data={"tradovate": CREDS})
    with pytest.raises(ProviderUnavailableError, match="no live adapter"):
        live_router(s)


def test_an_adapter_is_used_only_when_everything_is_set() -> None:
    class Fake:
        def place(self, order: Any) -> Any: ...
        def cancel(self, client_order_id: str) -> Any: ...
        def modify(self, client_order_id: str, **kw: Any) -> Any: ...
        def positions(self) -> dict[str, int]:
            return {}

    s = Settings(execution={"mode": "live", "confirm_live": True}, data={"tradovate": CREDS})
    assert isinstance(live_router(s, adapter=lambda _s: Fake()), LiveRouter)
