"""Cycles and the loop: one analysis → risk → execution cycle (``run_once``), the loop that runs one per
symbol every ``cadence_s`` inside the trading windows, and the recovery of a cycle cut short."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import Any, Literal

from nq_ray.agents.desk import client_order_id_for
from nq_ray.agents.models import RiskAssessment
from nq_ray.agents.service.halts import PROP_HALT_CODES, DeskHaltedError, Halts
from nq_ray.agents.service.registry import DEFAULT_AGENTS, AgentRegistry
from nq_ray.agents.service.state import DeskCore
from nq_ray.errors import InvalidArgumentError, NQRayError

Windows = Literal["rth", "globex", "always"]
WINDOWS = ("rth", "globex", "always")
RECOVER_WITHIN = timedelta(minutes=5)


def in_window(windows: str, now: datetime) -> bool:
    """Whether the loop may run a cycle at ``now``: RTH, any Globex hour, or always."""
    from nq_ray.market import sessions

    if windows == "always":
        return True
    if windows == "rth":
        return sessions.is_rth(now)
    return sessions.is_open(now)


class DeskLoop:
    """The desk's cycles: one-shot, looped on a cadence, and recovered after a crash."""

    def __init__(self, core: DeskCore, registry: AgentRegistry, halts: Halts) -> None:
        self.core = core
        self.registry = registry
        self.halts = halts
        self.task: asyncio.Task[None] | None = None
        self.hosted = True  # False: this instance never runs the loop (``DeskService.hosts_loop``)
        self.cycles = 0
        self.last_cycle_at: str | None = None
        self.last_error: str | None = None

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    async def recover(self) -> None:
        """Approved decisions recorded by a cycle that died before it wrote its execution: send them now
        when recent (the client order id makes that idempotent at the broker), else close them unsent."""
        from nq_ray.agents.models import ExecutionReport

        core = self.core
        now = core.clock()
        ids = await core.store.unexecuted_decisions(
            agent=self.registry.agent_id,
            exec_agent=DEFAULT_AGENTS["execution"],
            since=now - timedelta(days=2),
        )
        desk = self.registry.desk()
        for decision_id in ids:
            rec = await core.store.decision(decision_id)
            if rec is None:
                continue
            at = datetime.fromisoformat(rec["at"])
            risk = RiskAssessment.model_validate(rec["decision"]["risk"])
            if now - at <= RECOVER_WITHIN and not core.state.get("halted"):
                execution = await desk.execution.execute_trade(
                    risk, client_order_id=client_order_id_for(decision_id)
                )
            else:
                execution = ExecutionReport(placed=False, note="cycle cut short; decision too old to send")
            await desk.record_execution(decision_id, rec["symbol"] or "", execution)
            await core.emit("recovered", {"decision_id": decision_id, "placed": execution.placed})

    async def run_once(self, symbol: str = "NQ") -> dict[str, Any]:
        """One analysis → risk → execution cycle for ``symbol`` (recorded before any order is sent)."""
        from nq_ray.domain.contracts import get_contract

        core = self.core
        if not isinstance(symbol, str):
            raise InvalidArgumentError("symbol must be a string such as 'NQ'")
        get_contract(symbol)  # UnknownSymbolError for a symbol nq-ray does not know
        try:
            out = await self.registry.desk().run_once(
                symbol,
                halted=core.state.get("halt_reason") if core.state.get("halted") else None,
                halt_check=self.halts.halt_check,
                approval_mode=bool(core.state.get("approval_mode")),
                approval_ttl_s=core.approval_ttl_s,
            )
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"[:500]
            await core.emit("cycle_failed", {"symbol": symbol, "error": self.last_error})
            raise
        self.cycles += 1
        self.last_cycle_at = core.clock().isoformat()
        out["degraded"] = self.halts.degraded
        if out["auto_halt"] and not core.state.get("halted"):
            await self.halts.set_halted(out["auto_halt"], who="desk")
            codes = {r.get("code") for r in ((out["risk"] or {}).get("verdict") or {}).get("reasons") or []}
            if codes & PROP_HALT_CODES:  # the account failed or its day stopped: flat, as the firm wants
                out["flatten"] = await self.halts.flatten(out["auto_halt"], who="desk")
        await core.emit(
            "decision",
            {
                "decision_id": out["decision_id"],
                "symbol": symbol,
                "action": out["action"],
                "halted": out["halted"],
                "approval_id": (out["approval"] or {}).get("id"),
                "placed": (out["execution"] or {}).get("placed"),
                "degraded": out["degraded"],
            },
        )
        if out["approval"] is not None:
            await core.emit("approval_pending", {"approval": out["approval"]})
        return out

    async def scan(self) -> list[str]:
        """The symbols this round trades when ``desk.scan`` is on: the ``top_n`` best of a ``scan_market``
        over the configured symbols × timeframes (score > 0); none when the scan fails (said in an event)."""
        core, cfg = self.core, self.core.settings.desk.scan
        assert core.tools is not None  # set by DeskService.ensure before the loop starts
        try:
            out = await core.tools.call(
                "scan_market", {"symbols": cfg.symbols, "timeframes": cfg.timeframes}, who="desk"
            )
        except NQRayError as exc:
            await core.emit("scan_failed", {"error": exc.to_dict()})
            return []
        picked = list(out["top_symbols"][: cfg.top_n])
        ranking = [
            {k: r[k] for k in ("symbol", "interval", "score", "bias", "confidence")} for r in out["rows"]
        ]
        await core.emit("scan", {"picked": picked, "rank_rule": out["rank_rule"], "ranking": ranking})
        return picked

    async def start(self, symbols: list[str] | None = None, cadence_s: float | None = None) -> None:
        """Start (or re-configure) the loop: every ``cadence_s`` seconds, inside the trading windows, one
        cycle per symbol, all symbols in parallel."""
        core = self.core
        if core.state.get("halted"):
            raise DeskHaltedError(
                f"the desk is halted ({core.state.get('halt_reason')}); resume it first",
                halt_reason=core.state.get("halt_reason"),
            )
        if symbols is not None:
            from nq_ray.domain.contracts import get_contract

            if not isinstance(symbols, list) or not symbols or len(symbols) > 16:
                raise InvalidArgumentError("symbols must be a list of 1 to 16 symbols such as ['NQ', 'ES']")
            core.state["symbols"] = [get_contract(s).symbol for s in symbols]
        if cadence_s is not None:
            if not isinstance(cadence_s, int | float) or not 1 <= cadence_s <= 86_400:
                raise InvalidArgumentError(
                    "cadence_s must be between 1 and 86400 seconds", cadence_s=cadence_s
                )
            core.state["cadence_s"] = float(cadence_s)
        core.state["running"] = True
        await core.save()
        self.spawn()
        await core.emit("status", {"running": True})

    async def set_windows(self, windows: str) -> None:
        """Trading windows of the loop: ``rth`` (09:30–16:00 ET), ``globex`` (any open hour), ``always``."""
        if windows not in WINDOWS:
            raise InvalidArgumentError(f"windows must be one of {list(WINDOWS)}, got {windows!r}")
        self.core.state["windows"] = windows
        await self.core.save()

    async def stop(self) -> None:
        self.core.state["running"] = False
        await self.core.save()
        await self.cancel()
        await self.core.emit("status", {"running": False})

    def spawn(self) -> None:
        if self.hosted and (self.task is None or self.task.done()):
            self.task = asyncio.create_task(self._loop(), name="desk-loop")

    async def cancel(self) -> None:
        task, self.task = self.task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _loop(self) -> None:
        core = self.core
        while core.state.get("running") and not core.state.get("halted"):
            if in_window(core.state.get("windows", "globex"), core.clock()):
                symbols = await self.scan() if core.settings.desk.scan.enabled else core.state["symbols"]
                results = await asyncio.gather(*(self.run_once(s) for s in symbols), return_exceptions=True)
                for r in results:
                    if isinstance(r, BaseException) and not isinstance(r, Exception):
                        raise r
            await core.sleep(float(core.state["cadence_s"]))
