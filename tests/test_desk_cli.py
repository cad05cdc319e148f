"""``nq-ray desk status|start|stop|resume|kill`` on the embedded default (no Ray: a desk over the store in
a temp data directory), run as a user would: typer's runner in process, and one real process."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from nq_ray.cli import app
from nq_ray.testing.wait import wait_until

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A temp data directory (its SQLite store) and the rules analyst only, here and for subprocesses."""
    values = {"NQ_DATA__DATA_DIR": str(tmp_path / "data"), "NQ_LLM__PROVIDERS": '["rules"]'}
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    return {**os.environ, **values}


def desk(*args: str) -> dict:
    """``nq-ray desk <args> --json``: the desk's answer (the command must succeed)."""
    result = runner.invoke(app, ["desk", *args, "--json"])
    assert result.exit_code == 0, result.output
    out: dict = json.loads(result.output)
    return out


def test_kill_halts_in_the_store_and_resume_in_a_new_process_lifts_it(env: dict[str, str]) -> None:
    killed = runner.invoke(app, ["desk", "kill", "--reason", "drill", "--who", "ops"])
    halted = desk("status")
    resumed = subprocess.run(
        [sys.executable, "-m", "nq_ray.cli", "desk", "resume", "--who", "ops"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    after = runner.invoke(app, ["desk", "status"])

    assert killed.exit_code == 0, killed.output
    assert killed.output.startswith("killed (record #1); flattened")
    assert "desk: HALTED — kill switch: drill (by ops at" in killed.output
    assert halted["halted"] and halted["halt_reason"] == "kill switch: drill" and halted["halted_by"] == "ops"
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.startswith("resumed\ndesk: not halted")
    assert after.exit_code == 0 and "desk: not halted" in after.output and "HALTED" not in after.output


def test_start_records_the_loop_and_a_halted_desk_refuses_it(env: dict[str, str]) -> None:
    started = desk("start", "--symbol", "NQ,ES", "--cadence", "60")
    stopped = desk("stop")
    runner.invoke(app, ["desk", "kill"])
    refused = runner.invoke(app, ["desk", "start"])

    # no desk runs in this process: the loop is recorded for the desk's host, and no cycle ran here
    assert started["running"] and started["symbols"] == ["NQ", "ES"] and started["cadence_s"] == 60.0
    assert started["cycles"] == 0 and not stopped["running"]
    assert refused.exit_code == 2
    assert "error [desk_halted]: the desk is halted (kill switch: manual); resume it first" in refused.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["start", "--cadence", "0"], "Invalid value for '--cadence'"),
        (["start", "--cadence", "-5"], "Invalid value for '--cadence'"),
        (["start", "--cadence", "86401"], "Invalid value for '--cadence'"),
        (["start", "--symbol", "XX"], "error [unknown_symbol]"),
        (["start", "--symbol", ","], "error [invalid_argument]: symbols must be a list of 1 to 16"),
        (["kill", "--who", "two words"], "Invalid value for '--who'"),
        (["kill", "--reason", ""], "Invalid value for '--reason'"),
        (["resume", "--force"], "No such option: --force"),
        (["pause"], "No such command 'pause'"),
    ],
)
def test_bad_input_is_a_clear_error_with_exit_2(env: dict[str, str], args: list[str], says: str) -> None:
    result = runner.invoke(app, ["desk", *args])

    assert result.exit_code == 2
    assert says in result.output


def test_status_shows_the_desk_in_a_few_lines(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["desk", "status"])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "desk: not halted",
        "loop: stopped, NQ every 300 s (globex); approval mode off",
    ]


def test_with_ray_address_the_commands_go_to_the_desk_actor(
    env: dict[str, str], ray_session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same commands drive the cluster's ``trading_desk`` actor; every actor made here is killed."""
    monkeypatch.setenv("RAY_ADDRESS", "local-test-session")  # Ray is already up in this process
    actors = ("trading_desk", "tool_registry", "paper_broker")

    def named() -> set[str]:
        return {a["name"] for a in ray_session.util.list_named_actors(all_namespaces=True)}

    for name in actors:  # left behind by another test, over another store
        with contextlib.suppress(ValueError):
            ray_session.kill(ray_session.get_actor(name, namespace="nq"), no_restart=True)
    wait_until(lambda: not set(actors) & named(), timeout_s=30, message="the old actors are gone")
    before = named()
    try:
        killed = desk("kill", "--reason", "drill")
        actor_status = ray_session.get(ray_session.get_actor("trading_desk", namespace="nq").status.remote())
        resumed = desk("resume")
        started = desk("start", "--cadence", "3600")
        stopped = desk("stop")
    finally:
        for name in named() - before:
            with contextlib.suppress(ValueError):
                ray_session.kill(ray_session.get_actor(name, namespace="nq"), no_restart=True)

    assert killed["halted"] and killed["halted_by"] == "cli" and killed["flatten_error"] is None
    assert actor_status["halted"] and actor_status["halt_reason"] == "kill switch: drill"
    assert not resumed["halted"]
    assert started["running"] and started["cadence_s"] == 3600.0 and not stopped["running"]
