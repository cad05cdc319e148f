"""``nq_ray.serve.ui_app``: the UI as its own Serve application (``nq-ui`` at ``/ui``, one replica) beside
the API app on the same Serve HTTP port, with a bearer token that both the API and the UI login require."""

from __future__ import annotations

import contextlib
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from nq_ray.config import Settings

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

TOKEN = "ui-serve-test-token"


@pytest.fixture(scope="module")
def served(ray_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from ray import serve

    from nq_ray.runtime.replay import start_clock
    from nq_ray.serve.runtime import APP_NAME, deploy
    from nq_ray.serve.ui_app import UI_APP_NAME, deploy_ui

    with socket.socket() as sock:  # a free loopback port
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    settings, _plan = start_clock(  # as `nq-ray up` does: the sample is replayed, prepared in the store
        Settings(
            data={"data_dir": str(tmp_path_factory.mktemp("ui_serve"))},
            mcp={"auth_token": TOKEN},
            serve={"host": "127.0.0.1", "port": port, "replica_num_cpus": 0.1},
        )
    )
    suffix = uuid.uuid4().hex[:8]
    names = {"broker_name": f"paper_broker_ui_{suffix}", "registry_name": f"tool_registry_ui_{suffix}"}
    serve.shutdown()  # a Serve left by an earlier test module would keep its own port
    deploy(settings, **names)
    try:
        yield deploy_ui(settings)
    finally:
        for app in (UI_APP_NAME, APP_NAME):
            with contextlib.suppress(Exception):
                serve.delete(app)
        serve.shutdown()
        for name in names.values():
            with contextlib.suppress(ValueError):
                ray_session.kill(ray_session.get_actor(name, namespace="nq"))


def test_ui_app_is_one_replica_at_slash_ui() -> None:
    from nq_ray.serve.ui_app import UI_ROUTE_PREFIX, ui_deployment

    app = ui_deployment(Settings(serve={"replica_num_cpus": 0.1}))
    deployment = app._bound_deployment if hasattr(app, "_bound_deployment") else app

    assert UI_ROUTE_PREFIX == "/ui"
    assert deployment.num_replicas == 1
    assert deployment.ray_actor_options["num_cpus"] == 0.1


def test_ui_served_by_serve_logs_in_with_the_token_and_shows_the_chart(served: str, browser: Any) -> None:
    wrong = httpx.post(served + "login", data={"username": "trader", "password": "wrong"}, timeout=30)
    right = httpx.post(served + "login", data={"username": "trader", "password": TOKEN}, timeout=30)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    try:
        page.goto(served)
        page.get_by_label("username").fill("trader")
        page.get_by_label("password").fill(TOKEN)
        page.get_by_role("button", name="Login").click()
        page.wait_for_selector("#market-chart .js-plotly-plot", timeout=90_000)
        page.wait_for_selector("#quote .nq-quote", timeout=30_000)
        quote = page.inner_text("#quote")
    finally:
        page.close()

    assert wrong.status_code >= 400 and right.status_code == 200
    assert "NQ" in quote and "SAMPLE · NOT LIVE" in quote
