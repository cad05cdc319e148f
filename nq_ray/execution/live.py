"""Live order routing: the interface only. Paper is the default; nothing routes to an exchange unless
``execution.mode=live``, ``execution.confirm_live=true`` and broker credentials are all set — and even
then only through an adapter that implements ``LiveRouter`` (a Tradovate adapter may come later).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from nq_ray.domain.orders import Order
from nq_ray.errors import ConfigError, CredentialsMissingError, ProviderUnavailableError
from nq_ray.execution.records import OrderRecord


@runtime_checkable
class LiveRouter(Protocol):
    """What a live adapter must offer; every call carries the journaled client order id."""

    def place(self, order: Order) -> OrderRecord: ...

    def cancel(self, client_order_id: str) -> OrderRecord: ...

    def modify(
        self, client_order_id: str, *, limit_price: float | None = None, stop_price: float | None = None
    ) -> OrderRecord: ...

    def positions(self) -> dict[str, int]: ...


def check_live_allowed(settings: Any) -> None:
    """Raise unless the settings allow live routing: mode=live, confirm_live and credentials."""
    ex = settings.execution
    if ex.mode != "live":
        raise ConfigError(
            "live routing is off: execution.mode is 'paper'; set NQ_EXECUTION__MODE=live, "
            "NQ_EXECUTION__CONFIRM_LIVE=true and broker credentials to route live",
            key="execution.mode",
        )
    if not ex.confirm_live:
        raise ConfigError(
            "execution.mode=live needs the explicit confirmation NQ_EXECUTION__CONFIRM_LIVE=true",
            key="execution.confirm_live",
        )
    if not settings.data.tradovate.configured:
        raise CredentialsMissingError(
            "live routing needs Tradovate credentials: NQ_DATA__TRADOVATE__USERNAME, "
            "NQ_DATA__TRADOVATE__PASSWORD, NQ_DATA__TRADOVATE__CID and NQ_DATA__TRADOVATE__SEC",
            provider="tradovate",
        )


def live_router(settings: Any, adapter: Callable[[Any], LiveRouter] | None = None) -> LiveRouter:
    """The live router for ``settings``, refused (typed error) unless live routing is allowed and an
    adapter is given; no adapter ships yet."""
    check_live_allowed(settings)
    if adapter is None:
        raise ProviderUnavailableError(
            "no live adapter is installed; live routing is an interface only in this version",
            provider="tradovate",
        )
    router = adapter(settings)
    if not isinstance(router, LiveRouter):
        raise ConfigError("the live adapter does not implement LiveRouter (place, cancel, modify, positions)")
    return router
