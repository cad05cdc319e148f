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


def build_stdio_server(settings: Settings | None = None, *, ray_address: str | None = None) -> Any:
    """The FastMCP server for stdio: every tool, audited straight into the store. The broker is the
    ``paper_broker`` actor of a ``Runtime`` on the cluster at ``ray_address`` / ``RAY_ADDRESS``, or of a
    small local Ray (started on the first tool call that needs the broker)."""
    from nq_ray.runtime import Runtime
    from nq_ray.serve.mcp_http import UnknownToolIsProtocolError
    from nq_ray.tools.audit import StoreAuditor
    from nq_ray.tools.mcp import build_mcp

    settings = settings or load_settings()
    address = ray_address or os.environ.get("RAY_ADDRESS") or None
    runtime = Runtime(settings, "cluster" if address else "local", address=address, feed=False)
    registry = runtime.registry(auditor=StoreAuditor(settings.store_url))
    mcp = build_mcp(registry, who="mcp-stdio")
    mcp.add_middleware(UnknownToolIsProtocolError())  # as over HTTP: an unknown tool is error -32602
    return mcp


def main(ray_address: str | None = None) -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    build_stdio_server(ray_address=ray_address).run(transport="stdio", show_banner=False)


if __name__ == "__main__":  # pragma: no cover
    main()
