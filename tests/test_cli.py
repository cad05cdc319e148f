"""The ``nq-ray`` command line, run as a user would (typer's runner in-process)."""

from typer.testing import CliRunner

from nq_ray.cli import app

runner = CliRunner()


def test_status_prints_session_status_and_latest_bar() -> None:
    result = runner.invoke(app, ["status", "--at", "2026-03-09T10:00-04:00"])
    assert result.exit_code == 0, result.output
    assert "open (RTH) for session 2026-03-09" in result.output
    assert "front      NQH26" in result.output
    assert "latest bar 2026-04-28 23:35 EDT  O 27283.25" in result.output
    assert "nq-ray --help" in result.output


def test_up_refuses_to_listen_beyond_loopback_without_a_token(monkeypatch) -> None:
    monkeypatch.delenv("NQ_MCP__AUTH_TOKEN", raising=False)
    result = runner.invoke(app, ["up", "--host", "0.0.0.0", "--once"])
    assert result.exit_code == 2
    assert "error [invalid_config]" in result.output and "NQ_MCP__AUTH_TOKEN" in result.output


def test_unknown_symbol_is_a_clear_error_with_exit_2() -> None:
    result = runner.invoke(app, ["bars", "--symbol", "XX"])
    assert result.exit_code == 2
    assert "error [unknown_symbol]" in result.output


def test_naive_clock_is_refused() -> None:
    result = runner.invoke(app, ["session", "--at", "2026-03-09 10:00"])
    assert result.exit_code == 2 and "no timezone" in result.output


def test_contract_command_shows_expiry_and_roll() -> None:
    result = runner.invoke(app, ["contract", "NQH6", "--at", "2026-01-05T12:00-05:00"])
    assert result.exit_code == 0, result.output
    assert "NQH26: expires 2026-03-20, rolls 2026-03-12" in result.output


def test_validate_exit_code_reflects_quality() -> None:
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0 and "zero_volume" in result.output


def test_up_with_an_empty_token_is_refused_before_anything_starts(monkeypatch) -> None:
    import nq_ray.serve.runtime as runtime

    started: list[object] = []
    monkeypatch.setattr(runtime, "up", lambda *a, **kw: started.append(a))  # a tripwire, never reached
    monkeypatch.setenv("NQ_MCP__AUTH_TOKEN", "")
    result = runner.invoke(app, ["up", "--host", "0.0.0.0", "--once"])
    assert result.exit_code == 2, result.output
    assert "error [invalid_config]" in result.output and "without a bearer token" in result.output
    assert started == []


STORE_URL = "postgresql+asyncpg://nq:s3cret-pg@db.internal:5432/nq"


def test_config_and_status_never_print_a_url_password(monkeypatch) -> None:
    monkeypatch.setenv("NQ_STORE__URL", STORE_URL)
    monkeypatch.setenv("NQ_CACHE__URL", "redis://:s3cret-redis@cache.internal:6379/0")
    shown = runner.invoke(app, ["config"])
    assert shown.exit_code == 0, shown.output
    assert "s3cret" not in shown.output and "nq:***@db.internal" in shown.output
    monkeypatch.delenv("NQ_CACHE__URL")  # status loads bars; no Redis to reach here
    status = runner.invoke(app, ["status", "--at", "2026-03-09T10:00-04:00"])
    assert status.exit_code == 0, status.output
    assert "s3cret" not in status.output and "store=postgresql+asyncpg://nq:***@db.internal" in status.output


def test_up_on_a_port_in_use_is_one_line_and_exit_2_before_ray_starts() -> None:
    """A real ``nq-ray up`` (subprocess: it must not start Ray in this process) against a held port."""
    import os
    import socket
    import subprocess
    import sys
    import tempfile
    import time

    import psutil

    from nq_ray.testing.instance import ROOT

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NQ_", "RAY_"))}
        env.update(
            PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "ui")]),
            NQ_DATA__DATA_DIR=tempfile.mkdtemp(prefix="nqcli"),
            RAY_TMPDIR=tempfile.mkdtemp(prefix="nqr", dir="/tmp"),
        )
        t0 = time.monotonic()
        out = subprocess.run(
            [sys.executable, "-m", "nq_ray.cli", "up", "--port", str(port)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    took = time.monotonic() - t0
    assert out.returncode == 2, out.stdout + out.stderr
    holder = f"{psutil.Process().name()} (pid {os.getpid()})"  # python, or python3.11 under make test
    assert out.stderr.strip().splitlines() == [
        f"error [invalid_config]: port {port} (HTTP (HAProxy)) is in use by {holder}; "
        "stop that or change serve.port: --port or NQ_SERVE__PORT"
    ]
    assert "Traceback" not in out.stdout and took < 20  # no Ray was started (that alone takes seconds)
