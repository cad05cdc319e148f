"""``nq_ray.runtime.cluster``: ``connect`` is the one ``ray.init`` and is idempotent; ``named_actor`` makes
named, detached, restartable actors."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nq_ray.config import Settings
from nq_ray.errors import ConfigError
from nq_ray.runtime.cluster import (
    NAMESPACE,
    actor_options,
    connect,
    ensure_token,
    named_actor,
    probe,
    token_candidates,
)
from nq_ray.runtime.sessions import clean_stale_sessions, stale_sessions
from nq_ray.testing.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]


def test_ray_init_is_called_in_one_place_only() -> None:
    out = subprocess.run(
        ["grep", "-rn", "ray.init(", "nq_ray", "ui"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    places = [line for line in out.splitlines() if line.strip()]
    code = [p for p in places if not p.startswith("nq_ray/testing/vllm_cpu.py:")]  # another venv's script
    assert [re.sub(r":\d+:.*", "", p) for p in code] == ["nq_ray/runtime/cluster.py"], places


def test_connect_is_idempotent_when_ray_is_up(ray_session: Any) -> None:
    first = connect()
    second = connect("some-address-it-must-not-dial")

    assert first.already and second.already
    assert not (first.started or first.joined or second.started or second.joined)
    assert ray_session.is_initialized()


def test_actor_options_are_the_project_recipe() -> None:
    opts = actor_options("paper_broker", max_task_retries=5, num_cpus=0)

    assert opts == {
        "name": "paper_broker",
        "namespace": NAMESPACE,
        "lifetime": "detached",
        "get_if_exists": True,
        "max_restarts": -1,
        "max_task_retries": 5,
        "num_cpus": 0,
    }
    assert "max_task_retries" not in actor_options("x")


def test_named_actor_is_detached_restartable_and_shared(ray_session: Any) -> None:
    import threading

    import ray
    from ray._private.state import actors  # the GCS actor table (the state API needs the dashboard)

    cls = ray.remote(num_cpus=0)(threading.Event)  # importable: worker processes load it by name
    name = f"recipe_test_{uuid.uuid4().hex[:8]}"
    a = named_actor(cls, name)
    try:
        b = named_actor(cls, name)  # get_if_exists: the same actor
        ray.get(a.set.remote())
        assert ray.get(b.is_set.remote()) is True
        assert ray.get_actor(name, namespace=NAMESPACE)._actor_id == a._actor_id
        assert actors(a._actor_id.hex())["IsDetached"] is True
        ray.kill(a, no_restart=False)  # max_restarts=-1: it comes back, a fresh __init__
        deadline = time.monotonic() + 60

        def restarted() -> bool:
            row = actors(a._actor_id.hex())
            return row["NumRestarts"] >= 1 and row["State"] == "ALIVE"

        while not restarted() and time.monotonic() < deadline:
            time.sleep(0.1)  # polls the GCS actor table for the restart (the condition, not a guess)
        assert restarted()
        assert ray.get(a.is_set.remote(), timeout=60) is False
    finally:
        ray.kill(a, no_restart=True)


# ---- security of a local Ray (issue #17): token auth, loopback, clear errors, stale sessions -------------

# A local Ray started by ``connect`` in a process of its own (the test process holds ``ray_session``): it
# makes a named actor, prints one JSON line (GCS address, its Ray processes and their listening sockets)
# and keeps Ray up until its stdin closes.
HEAD = textwrap.dedent(
    """
    import json, sys, threading
    import psutil, ray
    from nq_ray.config import Settings
    from nq_ray.runtime import cluster

    settings = Settings(data={"data_dir": sys.argv[1]})
    conn = cluster.connect(settings=settings, num_cpus=1, dashboard=True, temp_dir=sys.argv[2])
    event = ray.remote(num_cpus=0)(threading.Event)
    actor = cluster.named_actor(event, "vault")
    ray.get(actor.set.remote())
    procs = psutil.Process().children(recursive=True)
    listening = []
    for p in procs:
        try:
            conns = p.net_connections(kind="inet")
        except psutil.Error:
            continue
        listening += [[p.name(), c.laddr.ip, c.laddr.port] for c in conns if c.status == psutil.CONN_LISTEN]
    print(json.dumps({"gcs": conn.gcs_address, "auth": conn.auth, "pids": [p.pid for p in procs],
                      "listening": listening, "stopped": conn.stopped_stale}), flush=True)
    sys.stdin.readline()
    ray.kill(actor)
    cluster.shutdown()
    """
)

# Join the cluster at argv[1] with plain Ray (no nq-ray code) and call the ``vault`` actor. Run with
# ``LOOPBACK_CLIENT``: Ray would otherwise swap 127.0.0.1 in the address for the host's outward IP, where
# nothing listens any more.
RAW_CLIENT = (
    "import ray, sys; ray.init(address=sys.argv[1], namespace='nq', log_to_driver=False);"
    "print('GOT', ray.get(ray.get_actor('vault').is_set.remote(), timeout=60), flush=True)"
)
LOOPBACK_CLIENT = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
ROOT_ENV = {"PYTHONPATH": f"{ROOT}:{ROOT / 'ui'}", "RAY_USAGE_STATS_ENABLED": "0"}


def _clean_env(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without Ray's or nq-ray's settings, with an empty HOME (no
    ``~/.ray/auth_token``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "NQ_"))}
    return env | ROOT_ENV | {"HOME": str(home)} | extra


def _start_head(tmp_path: Path) -> tuple[subprocess.Popen[str], Path, str]:
    """A process that starts a local Ray through ``connect`` (``HEAD``) on ``tmp_path``'s data dir; it
    prints one JSON line when Ray is up and stops it when its stdin closes."""
    data, tmp = tmp_path / "data", tempfile.mkdtemp(prefix="nqh", dir="/tmp")
    with (tmp_path / "head.err").open("w") as err:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [sys.executable, "-c", HEAD, str(data), tmp],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=_clean_env(tmp_path),
        )
    assert proc.stdout is not None and proc.stdin is not None
    return proc, data, tmp


def _head_exited(proc: subprocess.Popen[str], tmp_path: Path) -> str:
    tail = (tmp_path / "head.err").read_text(errors="replace")[-3000:]
    return f"the head process exited ({proc.wait()}):\n{tail}"


@pytest.fixture
def head(tmp_path: Path) -> Iterator[dict[str, Any]]:
    proc, data, tmp = _start_head(tmp_path)
    assert proc.stdout is not None and proc.stdin is not None
    line = proc.stdout.readline()
    if not line:  # Ray's start can time out on a machine the rest of the suite keeps busy: once more
        print(_head_exited(proc, tmp_path))  # shown with the test's output if the second start fails too
        shutil.rmtree(tmp, ignore_errors=True)
        proc, data, tmp = _start_head(tmp_path)
        assert proc.stdout is not None and proc.stdin is not None
        line = proc.stdout.readline()
    assert line, _head_exited(proc, tmp_path)
    info = json.loads(line) | {"data": data, "proc": proc}
    try:
        yield info
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def test_local_ray_listens_on_loopback_only(head: dict[str, Any]) -> None:
    listening = head["listening"]
    names = {name for name, _, _ in listening}

    assert {"gcs_server", "raylet"} <= names, listening  # the list is of Ray's own processes
    assert int(head["gcs"].rsplit(":", 1)[1]) in {port for _, _, port in listening}
    wide = [s for s in listening if not ipaddress.ip_address(s[1].removeprefix("::ffff:")).is_loopback]
    assert not wide, f"listening beyond loopback: {wide}"


def test_a_process_without_the_token_cannot_call_an_actor(head: dict[str, Any], tmp_path: Path) -> None:
    token = (head["data"] / "ray_auth_token").read_text()
    assert head["auth"] is True
    assert stat.S_IMODE((head["data"] / "ray_auth_token").stat().st_mode) == 0o600

    # plain Ray, no token: the GCS refuses it (Ray retries the refused call; it never reaches the actor)
    rogue = subprocess.Popen(
        [sys.executable, "-c", RAW_CLIENT, head["gcs"]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_clean_env(tmp_path, **LOOPBACK_CLIENT),
    )
    assert rogue.stderr is not None
    try:
        refused = wait_until(
            lambda: (
                "Authentication token is missing or incorrect" in rogue.stderr.readline()
                or rogue.poll() is not None
            ),
            timeout_s=60,
            message="the GCS refuses the token-less client",
        )
    finally:
        rogue.kill()
    out, _ = rogue.communicate()
    assert refused and "GOT" not in out

    # the same client with the token calls the actor
    ok = subprocess.run(
        [sys.executable, "-c", RAW_CLIENT, head["gcs"]],
        capture_output=True,
        text=True,
        timeout=120,
        env=_clean_env(tmp_path, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token, **LOOPBACK_CLIENT),
    )
    assert "GOT True" in ok.stdout, ok.stderr[-2000:]


def test_nq_ray_without_the_token_gets_a_clear_error(head: dict[str, Any], tmp_path: Path) -> None:
    code = (
        "import sys; from nq_ray.config import Settings; from nq_ray.runtime.cluster import connect;"
        "connect(sys.argv[1], settings=Settings(data={'data_dir': sys.argv[2]}))"
    )
    t0 = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", code, head["gcs"], str(tmp_path / "other")],
        capture_output=True,
        text=True,
        timeout=60,
        env=_clean_env(tmp_path),
    )

    assert out.returncode != 0 and time.monotonic() - t0 < 30
    assert "ConfigError" in out.stderr and "requires a token" in out.stderr and head["gcs"] in out.stderr


def test_joining_with_the_token_file_of_the_data_dir_works(head: dict[str, Any], tmp_path: Path) -> None:
    code = (
        "import sys, ray; from nq_ray.config import Settings; from nq_ray.runtime.cluster import connect;"
        "c = connect(sys.argv[1], settings=Settings(data={'data_dir': sys.argv[2]}));"
        "print('GOT', c.auth, ray.get(ray.get_actor('vault', namespace='nq').is_set.remote()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, head["gcs"], str(head["data"])],
        capture_output=True,
        text=True,
        timeout=120,
        env=_clean_env(tmp_path),
    )

    assert "GOT True True" in out.stdout, out.stderr[-2000:]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the socket is: nothing listens there


def test_unreachable_address_is_a_config_error_naming_it(tmp_path: Path) -> None:
    address = f"127.0.0.1:{_closed_port()}"
    settings = Settings(data={"data_dir": str(tmp_path)})

    with pytest.raises(ConfigError, match=re.escape(address)) as err:
        probe(address, settings)
    assert "RAY_ADDRESS" in err.value.message and "ray start --head" in err.value.message


def test_malformed_address_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not host:port"):
        probe("no-port-here", Settings(data={"data_dir": str(tmp_path)}))


def test_up_with_an_unreachable_ray_address_exits_2_within_30_s(tmp_path: Path) -> None:
    address = f"127.0.0.1:{_closed_port()}"
    t0 = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "nq_ray.cli", "up", "--once"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=_clean_env(tmp_path, RAY_ADDRESS=address, NQ_DATA__DATA_DIR=str(tmp_path / "data")),
    )
    elapsed = time.monotonic() - t0

    assert out.returncode == 2, out.stderr[-2000:]
    assert f"error [invalid_config]: cannot reach the Ray cluster at {address}" in out.stderr
    assert elapsed < 30


def test_token_file_is_made_0600_in_a_new_0700_dir(tmp_path: Path) -> None:
    settings = Settings(data={"data_dir": str(tmp_path / "new")})

    path = ensure_token(settings)

    assert path == tmp_path / "new" / "ray_auth_token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert len(path.read_text()) >= 32
    assert ensure_token(settings).read_text() == path.read_text()  # made once, then reused


def test_token_file_open_to_others_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "tok"
    path.write_text("x" * 43)
    path.chmod(0o644)
    settings = Settings(data={"data_dir": str(tmp_path)}, ray={"token_path": str(path)})

    ensure_token(settings)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_short_token_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tok"
    path.write_text("short")
    path.chmod(0o600)

    with pytest.raises(ConfigError, match="shorter than 32"):
        ensure_token(Settings(data={"data_dir": str(tmp_path)}, ray={"token_path": str(path)}))


def test_joining_reads_ray_auth_token_before_the_token_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data={"data_dir": str(tmp_path)})
    path = ensure_token(settings)
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert token_candidates(settings) == [(path.read_text(), str(path))]

    monkeypatch.setenv("RAY_AUTH_TOKEN", "from-the-env")
    assert token_candidates(settings)[0] == ("from-the-env", "RAY_AUTH_TOKEN")


def test_ray_settings_default_to_token_auth_on_loopback_with_free_ports() -> None:
    rs = Settings().ray

    assert (rs.auth, rs.host, rs.port, rs.dashboard_port, rs.metrics_export_port) == (
        "token",
        "127.0.0.1",
        0,
        0,
        0,
    )


def _running(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_a_ray_left_by_a_killed_owner_is_found_and_stopped(tmp_path: Path) -> None:
    import psutil

    owner, data, tmp = _start_head(tmp_path)
    assert owner.stdout is not None
    info = json.loads(owner.stdout.readline())
    settings = Settings(data={"data_dir": str(data)})
    try:
        assert stale_sessions(settings) == []  # its owner is alive: not stale
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=30)

        stale = wait_until(lambda: stale_sessions(settings), timeout_s=30, message="the Ray is stale")
        assert stale[0].owner_pid == owner.pid and set(stale[0].pids) <= set(info["pids"])
        assert f"nq-ray pid {owner.pid}" in stale[0].describe()

        stopped = clean_stale_sessions(settings)

        assert [s.owner_pid for s in stopped] == [owner.pid]
        assert not [p for p in stale[0].pids if _running(p)]
        assert stale_sessions(settings) == [] and not list((data / "ray_sessions").glob("*.json"))
    finally:
        for pid in info["pids"]:  # whatever is left of this test's own Ray
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
        shutil.rmtree(tmp, ignore_errors=True)


def test_the_next_local_start_stops_the_ray_a_killed_owner_left(tmp_path: Path) -> None:
    import psutil

    data = tmp_path / "data"
    env = _clean_env(tmp_path)
    dirs = [tempfile.mkdtemp(prefix="nqh", dir="/tmp") for _ in range(2)]
    run = [sys.executable, "-c", HEAD, str(data)]
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.DEVNULL, "text": True}
    first = subprocess.Popen([*run, dirs[0]], env=env, **pipes)  # type: ignore[call-overload]
    left = json.loads(first.stdout.readline())["pids"]
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    second = subprocess.Popen([*run, dirs[1]], env=env, **pipes)  # type: ignore[call-overload]
    try:
        info = json.loads(second.stdout.readline())

        assert len(info["stopped"]) == 1 and f"nq-ray pid {first.pid}" in info["stopped"][0]
        assert not [p for p in left if _running(p)]
    finally:
        second.stdin.close()
        second.wait(timeout=60)
        for pid in left:
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


def test_a_local_ray_beyond_loopback_without_auth_is_refused(tmp_path: Path) -> None:
    code = (
        "import sys; from nq_ray.config import Settings; from nq_ray.runtime.cluster import connect;"
        "ray = {'auth': 'disabled', 'host': '192.0.2.10'};"
        "connect(settings=Settings(data={'data_dir': sys.argv[1]}, ray=ray))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=_clean_env(tmp_path),
    )

    assert out.returncode != 0
    assert "refusing to start Ray on 192.0.2.10 with token auth disabled" in out.stderr, out.stderr[-2000:]
