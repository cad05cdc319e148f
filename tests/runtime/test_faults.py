"""The fault matrix (issue #17): bursts of orders through the real ports while the parts of the runtime die.

One run per database (SQLite, PostgreSQL), on one store from start to end:

1. **SIGKILL, no Ray** — the limit is patched live (``LiveSettings.apply``, what ``PATCH /api/config``
   does without Ray) from 4 to 2; a runtime process (``faultkit``) sends a burst with fills and is killed
   with SIGKILL mid-burst; a new one starts on the same store, retries what was never answered, sends more.
2. **Ray actors killed** — broker, registry and desk actors, created with the start-up settings (limit 4);
   a burst through ``RayBroker`` and the registry's tools (``RayTools``) while the broker and registry
   actors are killed (``ray.kill(..., no_restart=False)``, Ray restarts them); the desk's kill switch
   (halt + flatten); a second burst while halted, with the desk and broker actors killed.
3. **SIGKILL while halted** — the Ray actors are gone; a runtime process sends a burst under the halt and
   is SIGKILLed; a new one starts, retries, and reports the live state it found.

Then, from the store: every acknowledged order is there exactly once with the status its caller saw,
nothing is there that nobody sent, fills are unique and add up to each order's filled quantity, no
position ever exceeded the patched limit, every accepted order was checked against the limits in force
(2, settings version 1), nothing opened while halted, and every runtime that came back saw limit 2,
version 1 and (after the kill switch) the halt. The counts are printed and recorded (``record_property``).

A second test per database SIGKILLs a *Ray* runtime (``faultkit --ray``, ``Runtime(settings, "local")``
with a Ray of its own): the driver alone, then a whole process group; each next start must stop the Ray
left behind, see the limit and the halt as they were and retry what was unanswered, and afterwards no
process or port of those Rays may be left (see its docstring).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from nq_ray.domain.orders import OrderStatus
from nq_ray.runtime.broker import RayBroker, get_or_create_broker
from nq_ray.runtime.desk import get_or_create_desk
from nq_ray.runtime.registry import LiveSettings, RayTools, get_or_create_registry
from nq_ray.store.repository import Repository
from nq_ray.testing.wait import await_until, wait_until
from tests.runtime.faultkit import PRICE, bar_time, read_log, settings_for, spec

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 2  # max_contracts_per_symbol after the live patch (start-up value: 4)
PATCH = {"risk": {"limits": {"max_contracts_per_symbol": LIMIT}}}
RETRY_FOR_S = 60.0


# ---- the runtime process (no Ray) ----------------------------------------------------------------


def _runtime(url: str, data: Path, log: Path, prefix: str, count: int, m0: float, retry: Path | None):
    cmd = [sys.executable, "-m", "tests.runtime.faultkit", "--url", url, "--data", str(data)]
    cmd += ["--log", str(log), "--prefix", prefix, "--count", str(count), "--m0", repr(m0)]
    if retry is not None:
        cmd += ["--retry", str(retry)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True, stderr=subprocess.PIPE)


def _sigkill_mid_burst(proc: subprocess.Popen[bytes], log: Path, after_acks: int) -> None:
    """SIGKILL the runtime's whole process group once ``after_acks`` orders were answered."""
    wait_until(
        lambda: proc.poll() is not None or sum(r["ev"] == "ack" for r in read_log(log)) >= after_acks,
        timeout_s=60,
        message=f"{after_acks} orders acknowledged by the runtime process",
    )
    assert proc.poll() is None, f"the runtime exited before the kill: {proc.stderr.read()!r}"  # type: ignore[union-attr]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _finish(proc: subprocess.Popen[bytes]) -> None:
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-3000:]


def _acks(log: Path) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in read_log(log) if r["ev"] == "ack"}


def _state(log: Path) -> dict[str, Any]:
    return next(r for r in read_log(log) if r["ev"] == "state")


# ---- the Ray runtime -----------------------------------------------------------------------------


class Burst:
    """Callers sending orders through a port each, retrying the same client order id until answered."""

    def __init__(self) -> None:
        self.acks: dict[str, dict[str, Any]] = {}
        self.retries = 0

    async def _send(self, port: Any, order_id: str, order: dict[str, Any]) -> None:
        deadline = time.monotonic() + RETRY_FOR_S
        while True:
            try:
                if isinstance(port, RayTools):
                    args = {
                        "symbol": order["symbol"],
                        "side": order["side"],
                        "contracts": order["quantity"],
                        "client_order_id": order_id,
                    }
                    out = await port.call("place_order", args, who="fault-matrix")
                    rec = out["order"]
                    status, qty = rec["status"], rec["quantity"]
                    codes = [r["code"] for r in rec.get("reasons") or []]
                else:
                    r = await port.place_order({**order, "client_order_id": order_id}, source="fault")
                    status, qty = r.status.value, r.quantity
                    codes = [x.code for x in r.reasons or []]
                self.acks[order_id] = {"id": order_id, "status": status, "qty": qty, "codes": codes}
                return
            except Exception:
                self.retries += 1
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    async def run(self, ports: list[Any], prefix: str, per_caller: int) -> None:
        async def caller(k: int, port: Any) -> None:
            for i in range(per_caller):
                await self._send(port, f"{prefix}-{k}-{i}", spec(k + i))

        await asyncio.gather(*(caller(k, p) for k, p in enumerate(ports)))


async def _pid(handle: Any) -> int:
    info = await handle.ready.remote()
    return int(info["pid"])


async def _killed_and_back(ray: Any, handle: Any, burst: Burst, after_acks: int) -> int:
    """Once ``after_acks`` orders are answered, kill ``handle`` (Ray restarts it); 1 once it is back."""
    before = await _pid(handle)
    await await_until(lambda: len(burst.acks) >= after_acks, timeout_s=60, message="burst under way")
    ray.kill(handle, no_restart=False)

    async def restarted() -> bool:
        return await _pid(handle) != before

    await await_until(restarted, timeout_s=60, message="a new process answers", retry_on=(Exception,))
    return 1


async def _registry_killed(ray: Any, handle: Any, burst: Burst, after_acks: int) -> int:
    await await_until(lambda: len(burst.acks) >= after_acks, timeout_s=60, message="burst under way")
    ray.kill(handle, no_restart=False)
    await await_until(
        lambda: handle.ping.remote(),
        timeout_s=60,
        message="the registry answers again",
        retry_on=(Exception,),
    )
    return 1


async def _prices(broker: RayBroker, m0: float, stop: asyncio.Event) -> None:
    """A price every 0.3 s, so market orders fill while the burst runs (skipped while the actor is down)."""
    while not stop.is_set():
        with contextlib.suppress(Exception):
            await broker.on_price("NQ", PRICE, bar_time(m0))
        await asyncio.sleep(0.3)


# ---- the store, read on its own: the invariants every run of the matrix checks ------------------------


async def _stored(db_url: str) -> tuple[list[Any], list[Any]]:
    repo = await Repository.connect(db_url)
    try:
        return await repo.list_orders(), await repo.fills()
    finally:
        await repo.close()


def _check_nothing_lost_or_doubled(
    orders: list[Any], fills: list[Any], acks: dict[str, dict[str, Any]], sent: set[str], summary: str
) -> dict[str, Any]:
    """Every acknowledged order stored once, with the status its caller saw; no entry nobody sent; fills
    unique and adding up to each order's filled quantity. The stored orders by client order id."""
    by_id = Counter(o.client_order_id for o in orders)
    stored = {o.client_order_id: o for o in orders}
    assert set(by_id.values()) == {1}, f"doubled: {[i for i, n in by_id.items() if n > 1][:5]}"
    assert not set(acks) - set(stored), f"lost: {sorted(set(acks) - set(stored))[:5]} ({summary})"
    for oid, ack in acks.items():
        assert (stored[oid].status is OrderStatus.REJECTED) == (ack["status"] == "rejected"), (oid, ack)
    entries = {o.client_order_id for o in orders if o.role.value == "entry"}
    assert entries <= sent, f"orders nobody sent: {sorted(entries - sent)[:5]}"
    assert len({f.fill.fill_id for f in fills}) == len(fills)
    per_order: Counter[str] = Counter()
    for f in fills:
        per_order[f.fill.client_order_id] += f.fill.quantity
    assert all(per_order[o.client_order_id] == o.filled_quantity for o in orders)
    return stored


def _check_limits_held(orders: list[Any], fills: list[Any], summary: str) -> int:
    """Every accepted entry was checked against the limit in force (2, settings version 1) and no position
    ever exceeded it; the final position."""
    for o in orders:
        if o.status is not OrderStatus.REJECTED and o.role.value == "entry":
            assert o.verdict is not None and o.verdict.settings_version == 1, o.client_order_id
            assert o.verdict.limits is not None and o.verdict.limits.max_contracts_per_symbol == LIMIT
    position, worst = 0, 0
    for f in sorted(fills, key=lambda f: f.fill.time):
        position += f.fill.quantity * f.fill.side.sign
        worst = max(worst, abs(position))
    assert worst <= LIMIT, f"a position of {worst} > {LIMIT} ({summary})"
    return position


def _check_halted_refused(acks: dict[str, dict[str, Any]], halted_ids: set[str], summary: str) -> None:
    """Nothing sent while a halt was in force was accepted."""
    seen = [acks[i] for i in sorted(halted_ids) if i in acks]
    wrong = [a["id"] for a in seen if a["status"] != "rejected" or "halted" not in a["codes"]]
    assert not wrong, f"accepted while halted: {wrong[:5]} ({summary})"


# ---- the matrix ----------------------------------------------------------------------------------


@pytest.mark.slow
async def test_fault_matrix_loses_nothing_doubles_nothing_and_keeps_limits_and_halts(
    ray_session: Any, db_url: str, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    ray = ray_session
    m0 = time.monotonic()
    data = tmp_path / "data"
    start = settings_for(db_url, str(data))
    counts: Counter[str] = Counter()
    acks: dict[str, dict[str, Any]] = {}
    states: list[dict[str, Any]] = []

    # 1. the limit patched live, then SIGKILL of the runtime mid-burst, and a restart on the same store
    live = LiveSettings(start, db_url)
    await live.restore()
    patched = await live.apply(PATCH, "fault-matrix")
    assert patched["version"] == 1
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    _sigkill_mid_burst(_runtime(db_url, data, log_a, "s1", 400, m0, None), log_a, after_acks=15)
    _finish(_runtime(db_url, data, log_b, "s2", 12, m0, retry=log_a))
    counts["restarts"] += 2
    for log in (log_a, log_b):
        acks |= _acks(log)
    states.append(_state(log_b))

    # 2. the Ray runtime: actors created with the start-up settings, killed during bursts
    sfx = uuid.uuid4().hex[:8]
    names = {"broker": f"pb_{sfx}", "registry": f"reg_{sfx}", "desk": f"desk_{sfx}"}
    b = get_or_create_broker(start, name=names["broker"], clock="bar")
    reg = get_or_create_registry(start, name=names["registry"], broker_name=names["broker"])
    desk = get_or_create_desk(start, name=names["desk"], registry_name=names["registry"])
    broker, tools = RayBroker(b), RayTools(reg)
    try:
        await broker.on_price("NQ", PRICE, bar_time(m0))
        states.append({"broker": await broker.live(), "api": (await reg.settings.remote())[0]})
        stop = asyncio.Event()
        pusher = asyncio.create_task(_prices(broker, m0, stop))
        first = Burst()
        kills = await asyncio.gather(
            first.run([broker, tools, broker, tools], "r1", per_caller=15),
            _killed_and_back(ray, b, first, after_acks=15),
            _registry_killed(ray, reg, first, after_acks=35),
        )
        counts["restarts"] += sum(kills[1:])

        await desk.ready.remote()
        killed = await desk.kill.remote("fault matrix", "test")  # halt (persisted) + flatten
        assert killed["halted"] and killed["flatten_error"] is None, killed
        kill_orders = {o["client_order_id"] for o in killed["flatten"]["orders"]}
        second = Burst()
        kills = await asyncio.gather(
            second.run([broker, tools], "r2", per_caller=10),
            _killed_and_back(ray, desk, second, after_acks=5),
            _killed_and_back(ray, b, second, after_acks=12),
        )
        counts["restarts"] += sum(kills[1:])
        stop.set()
        await pusher
        await broker.on_price("NQ", PRICE, bar_time(m0))
        desk_status = await desk.status.remote()
        version, shown = await reg.settings.remote()
        states.append({"broker": await broker.live(), "api": version, "desk_halted": desk_status["halted"]})
        assert shown.risk.limits.max_contracts_per_symbol == LIMIT and version == 1
        for burst in (first, second):
            acks |= burst.acks
            counts["retries"] += burst.retries
    finally:
        for name in names.values():
            with contextlib.suppress(ValueError):
                ray.kill(ray.get_actor(name, namespace="nq"), no_restart=True)
        for agent in ("analysis_agent", "risk_agent", "execution_agent"):
            with contextlib.suppress(ValueError):
                ray.kill(ray.get_actor(f"agent-{names['desk']}-{agent}", namespace="nq"), no_restart=True)

    # 3. SIGKILL of the runtime while halted, and a restart on the same store
    log_c, log_d = tmp_path / "c.log", tmp_path / "d.log"
    _sigkill_mid_burst(_runtime(db_url, data, log_c, "s3", 400, m0, None), log_c, after_acks=10)
    _finish(_runtime(db_url, data, log_d, "s4", 6, m0, retry=log_c))
    counts["restarts"] += 2
    for log in (log_c, log_d):
        acks |= _acks(log)
    states.append(_state(log_d))

    # ---- the store, read on its own ------------------------------------------------------------
    orders, fills = await _stored(db_url)
    sent = {r["id"] for log in (log_a, log_b, log_c, log_d) for r in read_log(log) if r["ev"] == "sent"}
    sent |= {f"{p}-{k}-{i}" for p, n, m in (("r1", 4, 15), ("r2", 2, 10)) for k in range(n) for i in range(m)}
    halted_ids = {i for i in acks if i.startswith(("r2-", "s3-", "s4-"))} | {
        r["id"] for r in read_log(log_d) if r["ev"] == "sent"
    }

    counts["orders_sent"] = len(sent)
    counts["acknowledged"] = len(acks)
    counts["accepted"] = sum(a["status"] != "rejected" for a in acks.values())
    counts["rejected"] = sum(a["status"] == "rejected" for a in acks.values())
    counts["rejected_halted"] = sum("halted" in a["codes"] for a in acks.values())
    counts["limited"] = sum("max_contracts_per_symbol" in a["codes"] for a in acks.values())
    counts["fills"] = len(fills)
    summary = " ".join(f"{k}={v}" for k, v in sorted(counts.items()))
    print(f"\nfault matrix [{db_url.split(':', 1)[0]}]: {summary}")
    record_property("summary", f"fault matrix [{db_url.split(':', 1)[0]}]: {summary}")
    for k, v in counts.items():
        record_property(k, v)

    stored = _check_nothing_lost_or_doubled(orders, fills, acks, sent, summary)

    # limits as they were, and no accepted order past the limit in force (2 since the patch, version 1)
    for s in states:
        assert s["broker"]["settings_version"] == 1 and s["broker"]["limits"]["max_contracts_per_symbol"] == 2
    assert states[0]["api_version"] == 1 and states[0]["api_limits"]["max_contracts_per_symbol"] == 2
    assert states[1]["api"] == states[2]["api"] == 1
    position = _check_limits_held(orders, fills, summary)
    assert counts["limited"] > 0 and counts["fills"] > 0  # the limit reduced or refused orders; fills

    # halts as they were: nothing opened while halted, the flatten went through, every restart saw it
    assert states[2]["desk_halted"] and states[2]["broker"]["halt"]["halted"]
    assert states[3]["broker"]["halt"]["halted"]
    _check_halted_refused(acks, halted_ids, summary)
    assert all(stored[i].status is not OrderStatus.REJECTED for i in kill_orders)
    assert position == 0  # flat after the kill switch, and no entry since
    assert json.dumps(states, default=str)  # the states are plain data (shown when an assertion fails)


# ---- SIGKILL of the Ray runtime itself -----------------------------------------------------------


class RayRuns:
    """The Ray runtime processes of one test (``faultkit --ray``), each its own session (process group),
    all on one data dir, store and Ray temp dir; what their Rays ran, to stop whatever is left."""

    def __init__(self, url: str, tmp_path: Path, m0: float) -> None:
        self.url, self.m0 = url, m0
        self.data = tmp_path / "data"
        self.logs = tmp_path
        self.ray_tmp = Path(tempfile.mkdtemp(prefix="nqf", dir="/tmp"))  # short: Ray's socket paths
        self.names = uuid.uuid4().hex[:8]
        self.procs: list[subprocess.Popen[bytes]] = []
        self.seen: dict[int, float] = {}  # pid -> create time of every Ray process the runs had
        self.ports: set[int] = set()

    def start(self, name: str, count: int, **opts: Any) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.logs / f"{name}.log"
        cmd = [sys.executable, "-m", "tests.runtime.faultkit", "--ray", "--names", self.names]
        cmd += ["--url", self.url, "--data", str(self.data), "--log", str(log), "--prefix", name]
        cmd += ["--count", str(count), "--m0", repr(self.m0)]
        for k, v in opts.items():
            flag = "--" + k.replace("_", "-")
            cmd += [flag] if v is True else [flag, str(v)]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "NQ_"))}
        env |= {
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "ui")]),
            "RAY_TMPDIR": str(self.ray_tmp),
            "RAY_USAGE_STATS_ENABLED": "0",
        }
        err = (self.logs / f"{name}.err").open("wb")
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True, stderr=err, stdout=err)
        self.procs.append(proc)
        return proc, log

    def note(self, log: Path) -> dict[str, Any]:
        """The run's reported state, its Ray's processes and ports remembered for the clean-up."""
        state = _state(log)
        for p in state["processes"]:
            self.ports.update(p["ports"])
            with contextlib.suppress(psutil.Error):
                self.seen[p["pid"]] = psutil.Process(p["pid"]).create_time()
        return state

    def left(self) -> list[psutil.Process]:
        """Processes of these runs still alive: the runtimes, the Ray processes they reported, the ones in
        a session record, and any process whose command line or inherited ``RAY_TMPDIR`` names this
        test's Ray temp dir (every Ray process the runs started, workers included)."""
        out: dict[int, psutil.Process] = {}
        for path in (self.data / "ray_sessions").glob("*.json"):
            with contextlib.suppress(OSError, ValueError, KeyError):
                record = json.loads(path.read_text())
                for p in [record["owner"], *record["processes"]]:
                    self.seen.setdefault(p["pid"], p["create_time"])
        for pid, created in self.seen.items():
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                if abs(proc.create_time() - created) < 0.01 and proc.status() != psutil.STATUS_ZOMBIE:
                    out[pid] = proc
        for proc in psutil.process_iter(["cmdline", "status"]):
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            cmdline = " ".join(proc.info["cmdline"] or [])
            with contextlib.suppress(psutil.Error):  # Ray's workers rename their command line
                if str(self.ray_tmp) in cmdline or proc.environ().get("RAY_TMPDIR") == str(self.ray_tmp):
                    out[proc.pid] = proc
        for proc in self.procs:
            if proc.poll() is None:
                out[proc.pid] = psutil.Process(proc.pid)
        out.pop(os.getpid(), None)
        return list(out.values())

    def ours(self, pid: int) -> bool:
        """Whether ``pid`` is one of these runs' processes or descends from one (not another Ray's on
        this host, which may take a port, Ray's fixed 52365 among them, once ours let it go)."""
        try:
            chain = [psutil.Process(pid), *psutil.Process(pid).parents()]
        except psutil.Error:
            return False
        mine = {p.pid for p in self.procs} | set(self.seen)
        return any(p.pid in mine or str(self.ray_tmp) in " ".join(p.cmdline()) for p in chain)

    def listening(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """The ports these Rays held that a process still listens on: (port, pid) of ours, of others."""
        ours, others = [], []
        for c in psutil.net_connections("inet"):
            if c.status == psutil.CONN_LISTEN and c.laddr.port in self.ports:
                (ours if c.pid is None or self.ours(c.pid) else others).append((c.laddr.port, c.pid))
        return ours, others

    def kill_all(self) -> None:
        for proc in self.left():
            with contextlib.suppress(psutil.Error):
                proc.kill()
        for proc in self.procs:
            with contextlib.suppress(Exception):
                proc.wait(timeout=10)
        shutil.rmtree(self.ray_tmp, ignore_errors=True)


def _answered(log: Path, prefix: str) -> int:
    return sum(r["ev"] == "ack" and r["id"].startswith(prefix) for r in read_log(log))


def _kill_when(proc: subprocess.Popen[bytes], log: Path, prefix: str, acks: int, *, group: bool) -> None:
    """SIGKILL the runtime once ``acks`` of its ``prefix`` orders were answered: the driver only (a crash
    of ``nq-ray up``), or its whole process group (the driver and the Ray it started)."""
    wait_until(
        lambda: proc.poll() is not None or _answered(log, prefix) >= acks,
        timeout_s=120,
        message=f"{acks} {prefix} orders answered by the Ray runtime",
    )
    assert proc.poll() is None, f"the Ray runtime exited before the kill (rc {proc.returncode})"
    if group:
        os.killpg(proc.pid, signal.SIGKILL)
    else:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.slow
async def test_a_sigkilled_ray_runtime_comes_back_with_its_orders_limits_and_halt(
    db_url: str, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    """The runtime killed is a Ray runtime (``Runtime(settings, "local")`` in a process, what ``nq-ray up``
    runs): A patches the limit live to 2, sends a burst through the broker port and the registry's tools,
    pulls the kill switch mid-burst and is SIGKILLed (the driver only: its Ray lives on, orphaned); B
    starts on the same data dir and store, stops that Ray, sees limit 2 (version 1) and the halt, retries
    A's unanswered orders, lifts the halt, sends a burst and is SIGKILLed with its whole process group; C
    starts, sees limit 2 and no halt, retries B's unanswered orders, sends, halts and exits. Then the
    store holds every acknowledged order once, and no process or port of those Rays is left."""
    runs = RayRuns(db_url, tmp_path, time.monotonic())
    counts: Counter[str] = Counter()
    started = time.monotonic()
    try:
        a, log_a = runs.start("ka", 60, patch=True, halt_at=24)
        _kill_when(a, log_a, "ka-", 36, group=False)
        state_a = runs.note(log_a)
        orphans = wait_until(
            lambda: [p for p in runs.left() if p.pid != a.pid],
            timeout_s=10,
            message="A's Ray processes outlive their driver",
        )
        counts["orphans_after_driver_kill"] = len(orphans)

        a_ray = dict(runs.seen)  # A's Ray processes (reported when it started)

        b, log_b = runs.start("kb", 60, retry=log_a, resume=True)
        wait_until(
            lambda: b.poll() is not None or any(r["ev"] == "ray" for r in read_log(log_b)),
            timeout_s=120,
            message="B's Ray up",
        )
        # B's start stopped them (left alone, Ray's dashboard and runtime-env agents outlive their driver by
        # about a minute, holding their ports, Ray's fixed 52365 among them)
        assert not [p for p in runs.left() if p.pid in a_ray], "A's Ray outlived B's start"
        _kill_when(b, log_b, "kb-", 20, group=True)
        state_b = runs.note(log_b)

        c, log_c = runs.start("kc", 6, retry=log_b, halt_at=12)
        rc = c.wait(timeout=180)
        assert rc == 0, (tmp_path / "kc.err").read_text()[-3000:]
        state_c = runs.note(log_c)

        # the Rays are gone: nothing of theirs runs or listens
        wait_until(lambda: not runs.left(), timeout_s=30, message="no process of the killed runtimes' Rays")
        wait_until(lambda: not runs.listening()[0], timeout_s=30, message="no port of those Rays listening")
        counts["ports_taken_since_by_others"] = len(runs.listening()[1])
        counts["ray_pids"], counts["ray_ports"] = len(runs.seen), len(runs.ports)
    finally:
        runs.kill_all()
    counts["seconds"] = round(time.monotonic() - started)

    rays = {n: next(r for r in read_log(log) if r["ev"] == "ray") for n, log in (("b", log_b), ("c", log_c))}
    logs = (log_a, log_b, log_c)
    first_sent: dict[str, dict[str, Any]] = {}
    for log in logs:
        for r in read_log(log):
            if r["ev"] == "sent":
                first_sent.setdefault(r["id"], r)
                counts["retried"] += r["id"] in first_sent and first_sent[r["id"]] is not r
    acks: dict[str, dict[str, Any]] = {}
    for log in logs:
        acks |= _acks(log)
    sent = set(first_sent)
    halted_ids = {i for i, r in first_sent.items() if r["halted"]}

    orders, fills = await _stored(db_url)
    counts["orders_sent"] = len(sent)
    counts["acknowledged"] = len(acks)
    counts["accepted"] = sum(a["status"] != "rejected" for a in acks.values())
    counts["rejected_halted"] = sum("halted" in a["codes"] for a in acks.values())
    counts["limited"] = sum("max_contracts_per_symbol" in a["codes"] for a in acks.values())
    counts["fills"] = len(fills)
    summary = " ".join(f"{k}={v}" for k, v in sorted(counts.items()))
    print(f"\nRay runtime SIGKILL [{db_url.split(':', 1)[0]}]: {summary}")
    print(f"B stopped: {rays['b']['stopped_stale']}\nC stopped: {rays['c']['stopped_stale']}")
    record_property("summary", f"Ray runtime SIGKILL [{db_url.split(':', 1)[0]}]: {summary}")
    for k, v in counts.items():
        record_property(k, v)

    # (a) the Ray the SIGKILLed driver left was found and stopped by the next start
    assert rays["b"]["stopped_stale"] and f"nq-ray pid {a.pid}" in rays["b"]["stopped_stale"][0]
    # nothing lost or doubled; every retry answered with the order stored once
    _check_nothing_lost_or_doubled(orders, fills, acks, sent, summary)
    assert counts["retried"] > 0 and set(acks) == sent  # every order a killed run left unanswered, retried
    # (b) limits and the halt as they were, and no order past the limit in force
    assert state_a["api_version"] == 1  # A's own patch
    for state in (state_b, state_c):
        assert state["api_version"] == 1 and state["api_limits"]["max_contracts_per_symbol"] == LIMIT
        assert state["broker"]["settings_version"] == 1
        assert state["broker"]["limits"]["max_contracts_per_symbol"] == LIMIT
    assert state_b["desk_halted"] and state_b["broker"]["halt"]["halted"]  # A's kill switch
    assert not state_c["desk_halted"] and not state_c["broker"]["halt"]["halted"]  # B lifted it
    _check_limits_held(orders, fills, summary)
    _check_halted_refused(acks, halted_ids, summary)
    assert halted_ids and counts["limited"] > 0 and counts["fills"] > 0
