"""``Runtime``: the builder of a mode. In process it makes a working tool context without Ray."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nq_ray.config import Settings
from nq_ray.errors import ConfigError
from nq_ray.ports import PaperBrokerPort, ToolsPort
from nq_ray.runtime import Runtime
from nq_ray.tools.context import ToolContext, current, set_default_context
from tests.execution.helpers import OPEN_LIMITS


@pytest.fixture
def no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to join or start Ray fails the test."""

    def refuse(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("an in_process runtime must not touch Ray")

    monkeypatch.setattr("nq_ray.runtime.cluster.connect", refuse)
    monkeypatch.setattr("nq_ray.runtime.builder.connect", refuse)


async def test_in_process_runtime_makes_a_working_tool_context_without_ray(
    no_ray: None, tmp_path: Path
) -> None:
    settings = Settings(data={"data_dir": str(tmp_path)}, risk={"limits": OPEN_LIMITS})
    runtime = Runtime(settings, "in_process", feed=False)
    try:
        ctx = runtime.tool_context()
        tools = runtime.tools()

        assert isinstance(ctx, ToolContext) and isinstance(ctx.broker(), PaperBrokerPort)
        assert ctx.broker() is runtime.broker()  # one book per runtime
        assert isinstance(tools, ToolsPort)
        names = {t["name"] for t in await tools.list_tools()}
        assert {"place_order", "get_nq_price", "check_risk_limits"} <= names
        out = await tools.call("check_risk_limits", {"symbol": "NQ", "side": "buy", "contracts": 1}, who="t")
        assert {"verdict", "limits"} <= set(out)  # the gate of the in-process broker answered
        portfolio = await runtime.broker().portfolio()
        assert portfolio["positions"] == {}
    finally:
        runtime.close()


def test_cluster_mode_needs_an_address(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    settings = Settings(data={"data_dir": str(tmp_path)})

    with pytest.raises(ConfigError, match="needs an address"):
        Runtime(settings, "cluster")
    with pytest.raises(ConfigError, match="unknown runtime mode"):
        Runtime(settings, "everywhere")  # type: ignore[arg-type]
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert (
        Runtime.from_env(settings).mode == "cluster" and Runtime.from_env(settings).address == "10.0.0.1:6379"
    )


def test_a_context_without_a_broker_says_where_to_get_one(tmp_path: Path) -> None:
    ctx = ToolContext(settings=Settings(data={"data_dir": str(tmp_path)}))

    with pytest.raises(ConfigError, match="nq_ray.runtime.Runtime"):
        ctx.broker()


def test_make_default_is_what_tools_see_outside_a_call(no_ray: None, tmp_path: Path) -> None:
    import contextvars

    runtime = Runtime(Settings(data={"data_dir": str(tmp_path)}), "in_process", feed=False)
    runtime.make_default()
    try:
        ctx = contextvars.Context().run(current)  # a fresh context: no call is bound

        assert ctx.broker_factory is not None and ctx.settings is runtime.settings
    finally:
        set_default_context(None)
        runtime.close()
