"""Two ``nq-ray up`` on one host never answer for each other.

Both run as a user would start them (``python -m nq_ray.cli up`` subprocesses), each with its own HTTP
port, data dir, token and Ray temp dir. Each places its own order (NQ on A, ES on B). Then A's API
replica is killed: while Serve restarts it, every answer A's port gives to A's token is A's own (its NQ
position), a refusal or a 5xx — never B's (B's ES position, or B refusing A's token with 401). Then B is
stopped and A still answers with its own data, B's port with nothing.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from nq_ray.testing.instance import UpInstance
from nq_ray.testing.wait import wait_until

pytestmark = pytest.mark.slow
REPLICA = "ray::ServeReplica:nq:NQApi"


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[UpInstance, UpInstance]]:
    quiet = {"NQ_REPLAY__START_DESK": "false"}  # each instance's book holds only the test's own order
    a = UpInstance(token="token-of-a", env=quiet).start()
    b = UpInstance(token="token-of-b", env=quiet).start()
    try:
        a.wait_healthy(timeout_s=180)
        b.wait_healthy(timeout_s=180)
        yield a, b
    finally:
        a.kill()
        b.kill()


def _run_dir(inst: UpInstance) -> Path:
    return Path(tempfile.gettempdir()) / f"nq-ray-{os.getuid()}" / str(inst.port)


def _post(inst: UpInstance, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(inst.base + path, json=body, headers=inst.headers, timeout=30)


def _positions(inst: UpInstance) -> httpx.Response:
    return _post(inst, "/api/tools/manage_position", {"action": "status"})


def _held(r: httpx.Response) -> set[str]:
    return {s for s, p in r.json()["portfolio"]["positions"].items() if p["quantity"]}


def test_two_instances_have_separate_ports_and_each_its_own_order(
    pair: tuple[UpInstance, UpInstance],
) -> None:
    a, b = pair
    sa, sb = a.snapshot(), b.snapshot()
    assert not set(sa.listening) & set(sb.listening), (sa.listening, sb.listening)
    assert 8500 not in sa.listening and 8500 not in sb.listening
    blocks = [json.loads((_run_dir(i) / "up.json").read_text())["replicas"] for i in (a, b)]
    assert not set(range(blocks[0][0], blocks[0][1] + 1)) & set(range(blocks[1][0], blocks[1][1] + 1))
    for inst, symbol in ((a, "NQ"), (b, "ES")):
        r = _post(inst, "/api/tools/place_order", {"symbol": symbol, "side": "buy", "contracts": 1})
        assert r.status_code == 200 and r.json()["accepted"], r.text  # fills on the next replayed bar
    for inst, symbol in ((a, "NQ"), (b, "ES")):
        wait_until(lambda i=inst: bool(_held(_positions(i))), timeout_s=60, message=f"{symbol} fills")
    assert _held(_positions(a)) == {"NQ"} and _held(_positions(b)) == {"ES"}
    assert httpx.get(b.base + "/api/config", headers=a.headers, timeout=10).status_code == 401


def test_the_web_ui_starts_on_its_first_visit(pair: tuple[UpInstance, UpInstance]) -> None:
    a, _b = pair
    assert not [n for n in a.snapshot().processes.values() if "nq-ui" in n]  # no UI before a visit
    first = httpx.get(a.base + "/ui/", timeout=30)
    assert first.status_code == 503 and first.headers["retry-after"] == "3", first.text
    wait_until(
        lambda: httpx.get(a.base + "/ui/", timeout=30).status_code == 200,
        timeout_s=120,
        message="the UI answers",
        interval_s=0.5,
    )


def test_while_a_replica_restarts_its_instance_never_gets_the_others_answer(
    pair: tuple[UpInstance, UpInstance],
) -> None:
    a, _b = pair
    replica = [pid for pid, name in a.snapshot().processes.items() if name == REPLICA]
    assert len(replica) == 1
    psutil.Process(replica[0]).kill()
    answers: list[str] = []

    def back_with_own_data() -> bool:
        try:
            r = _positions(a)
        except httpx.HTTPError as exc:
            answers.append(type(exc).__name__)
            return False
        if r.status_code != 200:
            answers.append(str(r.status_code))
            assert r.status_code >= 500, f"A's port answered {r.status_code}: {r.text[:200]}"
            return False
        held = _held(r)
        answers.append(",".join(sorted(held)))
        assert held == {"NQ"}, f"A's port answered with another instance's data: {held}"
        new = [p for p, n in a.snapshot().processes.items() if n == REPLICA and p != replica[0]]
        return bool(new)

    try:
        wait_until(back_with_own_data, timeout_s=120, message="A's replica is back", interval_s=0.05)
    finally:
        print("answers while A's replica restarted:", _runs(answers))
    assert answers, "no answer was seen"


def _runs(answers: list[str]) -> str:
    """'ConnectError x3, 500 x12, NQ x1': the answers in order, repeats folded."""
    out: list[list[Any]] = []
    for a in answers:
        if out and out[-1][0] == a:
            out[-1][1] += 1
        else:
            out.append([a, 1])
    return ", ".join(f"{a} x{n}" for a, n in out)


def test_when_one_instance_stops_the_other_keeps_answering_alone(pair: tuple[UpInstance, UpInstance]) -> None:
    a, b = pair
    b.interrupt()
    assert b.wait_exit(timeout_s=60) < 10
    assert b.leftovers(timeout_s=2) == ([], [])
    with pytest.raises(httpx.ConnectError):
        httpx.get(b.base + "/health", timeout=5)
    t0 = time.monotonic()
    assert _held(_positions(a)) == {"NQ"} and time.monotonic() - t0 < 30
