"""``nq-ray mcp``: the MCP server over stdio for desktop MCP clients (local, so no auth).

The tools run in this process. Tools that need the paper broker reach the ``paper_broker`` actor: the
server joins the Ray cluster named by ``RAY_ADDRESS`` (e.g. the one ``nq-ray up`` started) or, without
it, starts a small local Ray on the first such call. Nothing is ever written to stdout but protocol
messages: Ray and library logs go to stderr.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from nq_ray.config import Settings, load_settings


def _broker_factory(address: str | None) -> Any:
    def make(settings: Settings) -> Any:
        import ray

        from nq_ray.execution.actor import get_or_create_broker

        if not ray.is_initialized():
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            if address is None:
                os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            ray.init(
                address=address,
                namespace="nq",
                log_to_driver=False,
                configure_logging=False,
                include_dashboard=False if address is None else None,
            )
        return get_or_create_broker(settings)

    return make


def build_stdio_server(settings: Settings | None = None, *, ray_address: str | None = None) -> Any:
    """The FastMCP server for stdio: every tool, audited straight into the store."""
    from nq_ray.tools.audit import StoreAuditor
    from nq_ray.tools.context import ToolContext
    from nq_ray.tools.mcp import build_mcp
    from nq_ray.tools.registry import build_registry

    settings = settings or load_settings()
    address = ray_address or os.environ.get("RAY_ADDRESS") or None
    context = ToolContext(settings=settings, broker_factory=_broker_factory(address))
    registry = build_registry(context, auditor=StoreAuditor(settings.store_url))
    return build_mcp(registry, who="mcp-stdio")


def main(ray_address: str | None = None) -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    build_stdio_server(ray_address=ray_address).run(transport="stdio", show_banner=False)


if __name__ == "__main__":  # pragma: no cover
    main()
