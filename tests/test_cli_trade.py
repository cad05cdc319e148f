"""``nq-ray trade`` (the loop), ``nq-ray replay`` and ``nq-ray backtest-agent``, run as a user would."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from nq_ray.cli import app
from nq_ray.config import Settings
from nq_ray.testing.wait import await_until

runner = CliRunner()
RULES_ONLY = '["rules"]'


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A temp data directory and the rules analyst only, for this process and for subprocesses."""
    values = {"NQ_DATA__DATA_DIR": str(tmp_path / "data"), "NQ_LLM__PROVIDERS": RULES_ONLY}
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    return {**os.environ, **values}


def test_trade_loop_prints_each_decision_and_stops_cleanly_on_ctrl_c(env: dict[str, str]) -> None:
    cmd = [sys.executable, "-m", "nq_ray.cli", "trade", "--cadence", "1", "--windows", "always", "--approval"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip())
            if sum("decision #" in x for x in lines) >= 2:
                break
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines += rest.splitlines()
    decisions = [x for x in lines if "decision #" in x]

    assert proc.returncode == 0, "\n".join(lines[-20:])
    # on the bundled sample the loop runs on its replay, and says so first
    assert lines[0].startswith("replay of sample starts at") and "x60 real time" in lines[0]
    assert any(x.startswith("desk loop: NQ every 1 s (always)") for x in lines)
    assert len(decisions) >= 2 and "decision #1 NQ:" in decisions[0] and "(rules)" in decisions[0]
    assert any(x.startswith("desk loop stopped after") for x in lines)
    assert not any("Traceback" in x for x in lines)
    state = asyncio.run(_desk_state(Settings()))
    assert state["running"] is False  # Ctrl-C is recorded: a restarted desk does not resume the loop


async def _desk_state(settings: Settings) -> dict[str, object]:
    from nq_ray.store.desk import DeskStore
    from nq_ray.store.repository import Repository

    repo = await Repository.connect(settings.store_url)
    try:
        return await DeskStore(repo).get_state("desk") or {}
    finally:
        await repo.close()


def test_replay_prints_an_identical_rules_decision_and_refuses_unknown_ids(
    env: dict[str, str], tmp_path: Path, nq_5m: pd.DataFrame
) -> None:
    from tests.agents.test_replay import record

    settings = Settings()
    decision_id = asyncio.run(record(settings, "sample", _rules_router(settings)))

    ok = runner.invoke(app, ["replay", str(decision_id)])
    missing = runner.invoke(app, ["replay", "999"])
    bad = runner.invoke(app, ["replay", "0"])

    assert ok.exit_code == 0, ok.output
    assert f"decision {decision_id} (NQ) as of 2026-04-15T11:05:00-04:00" in ok.output
    assert "window   matches" in ok.output and "result   identical" in ok.output
    assert missing.exit_code == 2 and "error [not_found]" in missing.output
    assert bad.exit_code == 2


def _rules_router(settings: Settings):  # type: ignore[no-untyped-def]
    from nq_ray.llm.router import LLMRouter

    return LLMRouter.from_config(settings.llm)


def test_backtest_agent_prints_a_report(env: dict[str, str]) -> None:
    result = runner.invoke(
        app, ["backtest-agent", "--start", "2026-04-27", "--every", "48", "--warmup", "12"]
    )

    assert result.exit_code == 0, result.output
    assert "agent:chain on NQ 5m" in result.output and "decisions" in result.output
    assert "'llm_answers': 0" in result.output  # rules only: no LLM was asked


def test_backtest_agent_refuses_a_bad_range(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["backtest-agent", "--start", "2026-04-28T23:00", "--warmup", "100"])

    assert result.exit_code == 2 and "error [invalid_argument]" in result.output


async def _desk_and_ray(ray: Any) -> str:
    """The desk actor's status and last events, Ray's free resources and its unfinished tasks."""
    from ray.util.state import list_tasks

    out = [f"free {ray.available_resources()}"]
    try:
        desk = ray.get_actor("trading_desk", namespace="nq")
        out.append(f"desk {await desk.status.remote()}")
        out.append(f"events {(await desk.events_since.remote(0))[-10:]}")
    except Exception as exc:  # the diagnosis of a failure must not hide it
        out.append(f"desk: {exc!r}")
    try:
        busy = list_tasks(filters=[("state", "!=", "FINISHED")], limit=20)
        out.append(f"tasks {[(t.name, t.state) for t in busy]}")
    except Exception as exc:
        out.append(f"tasks: {exc!r}")
    return "; ".join(out)[:6000]


async def test_trade_loop_with_ray_address_drives_the_desk_actor(
    env: dict[str, str], ray_session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``RAY_ADDRESS`` the loop is the ``trading_desk`` actor's; the CLI prints its decisions from
    ``events_since`` and stops the actor's loop on exit. Every actor created here is killed afterwards."""
    from nq_ray.agents.loop import run_loop
    from nq_ray.runtime import Runtime

    monkeypatch.setenv("RAY_ADDRESS", "local-test-session")  # Ray is already up in this process

    def named() -> set[str]:
        return {a["name"] for a in ray_session.util.list_named_actors(all_namespaces=True)}

    # left behind by earlier tests, with another store (and the replay whose clock a desk would follow)
    runtime_actors = {"trading_desk", "tool_registry", "paper_broker", "market_replay"}
    runtime_actors |= {f"agent-{a}_agent" for a in ("analysis", "risk", "execution")}  # the desk's agents
    for name in runtime_actors:
        with contextlib.suppress(ValueError):
            ray_session.kill(ray_session.get_actor(name, namespace="nq"), no_restart=True)
    await await_until(  # a killed actor's name is free once it is dead
        lambda: not runtime_actors & named(),
        timeout_s=30,
        interval_s=0.2,
        message="the killed runtime actors are gone",
    )
    before = named()
    lines: list[str] = []
    stop = asyncio.Event()

    def echo(line: str) -> None:
        lines.append(line)
        if "decision #" in line:
            stop.set()

    try:
        try:
            await asyncio.wait_for(
                run_loop(
                    Settings(),
                    symbols=["NQ"],
                    cadence_s=3600,
                    windows="always",
                    approval_mode=True,
                    echo=echo,
                    runtime=Runtime.from_env(Settings()),
                    stop=stop,
                ),
                timeout=240,
            )
        except TimeoutError:  # say what the desk and Ray were doing (CI failed here once, unexplained)
            pytest.fail(f"no decision in 240 s; lines {lines}; {await _desk_and_ray(ray_session)}")
        desk = ray_session.get_actor("trading_desk", namespace="nq")
        status = await desk.status.remote()
    finally:
        for name in named() - before:
            with contextlib.suppress(ValueError):
                ray_session.kill(ray_session.get_actor(name, namespace="nq"), no_restart=True)

    assert lines[0].startswith("desk loop on Ray (local-test-session): NQ")
    assert any("decision #1 NQ:" in x and "(rules)" in x for x in lines)
    assert lines[-1].startswith("desk loop stopped") and status["running"] is False
