"""nq-ray's web UI: a Gradio app that is a client of the nq-ray HTTP API and WebSocket.

``build_ui(api_url, token)`` gives the ``gr.Blocks``; ``main()`` serves it on its own
(``python -m nq_ray_ui --api-url http://127.0.0.1:8000``); ``nq_ray.serve.ui_app`` mounts it in Ray Serve.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

__all__ = ["build_ui", "launch_kwargs", "main", "mount"]


def build_ui(api_url: str, token: str | None = None) -> Any:
    from nq_ray_ui.app import build_ui as _build

    return _build(api_url, token)


def launch_kwargs() -> dict[str, Any]:
    from nq_ray_ui.app import launch_kwargs as _kw

    return _kw()


def mount(app: Any, api_url: str, token: str | None = None, path: str = "/", **kwargs: Any) -> Any:
    """Mount the UI on a FastAPI ``app`` at ``path`` (what the Serve builder and the tests use);
    ``kwargs`` go to ``gr.mount_gradio_app`` (``auth``, ``root_path``, ...)."""
    import gradio as gr

    demo = build_ui(api_url, token)
    app.state.nq_ui = demo  # ``demo.nq_ctx.feed.stop()`` ends its WebSocket listener
    return gr.mount_gradio_app(app, demo, path=path, ssr_mode=False, **launch_kwargs(), **kwargs)


def main(argv: list[str] | None = None) -> None:
    """Serve the UI on its own process, talking to an nq-ray API (local or remote)."""
    parser = argparse.ArgumentParser(prog="nq-ray-ui", description=main.__doc__)
    parser.add_argument("--api-url", default=os.environ.get("NQ_UI_API_URL", "http://127.0.0.1:8000"))
    parser.add_argument(
        "--token", default=os.environ.get("NQ_MCP__AUTH_TOKEN"), help="bearer token of the API"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    args = parser.parse_args(argv)
    demo = build_ui(args.api_url, args.token)
    demo.queue(default_concurrency_limit=8).launch(
        server_name=args.host, server_port=args.port, ssr_mode=False, **launch_kwargs()
    )
