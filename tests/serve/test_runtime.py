"""``nq-ray up`` rules that need no running Ray: loopback-only without a token, the URLs it prints."""

from __future__ import annotations

import pytest

from nq_ray.config import Settings
from nq_ray.errors import ConfigError
from nq_ray.serve.runtime import check_bind, is_loopback, urls


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "::", "example.com"])
def test_binding_beyond_loopback_without_token_refuses_saying_why(host: str) -> None:
    with pytest.raises(ConfigError, match="NQ_MCP__AUTH_TOKEN"):
        check_bind(Settings(serve={"host": host}))


def test_loopback_or_token_is_allowed() -> None:
    check_bind(Settings(serve={"host": "127.0.0.1"}))
    check_bind(Settings(serve={"host": "localhost"}))
    check_bind(Settings(serve={"host": "0.0.0.0"}, mcp={"auth_token": "t"}))
    assert is_loopback("::1") and not is_loopback("10.0.0.1")


def test_urls_point_clients_at_mcp_with_the_slash() -> None:
    where = urls(Settings(serve={"host": "0.0.0.0", "port": 8123}), "http://127.0.0.1:8265")
    assert where["mcp"] == "http://127.0.0.1:8123/mcp/"
    assert where["websocket"] == "ws://127.0.0.1:8123/ws" and where["ray_dashboard"].endswith(":8265")
