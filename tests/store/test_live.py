"""``nq_ray.store.live``: the live settings overlay and the halt, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from nq_ray.config import Settings
from nq_ray.store.desk import DeskStore
from nq_ray.store.jobs import config_changes
from nq_ray.store.live import (
    LiveOverlay,
    base_values,
    effective_settings,
    leaves,
    merge_patches,
    read_halt,
    read_live,
    read_live_sync,
    record_live_change,
)
from nq_ray.store.repository import Repository

AT = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def _settings(tmp_path: Path, url: str, per_symbol: int = 5) -> Settings:
    return Settings(
        store={"url": url},
        data={"data_dir": str(tmp_path / "data")},
        risk={"limits": {"max_contracts_per_symbol": per_symbol}},
    )


def test_patches_merge_leaf_by_leaf_and_keep_null() -> None:
    old = {"risk": {"limits": {"max_contracts_per_symbol": 1, "max_total_contracts": 4}}}
    new = {"risk": {"limits": {"max_total_contracts": None}, "margins": {"NQ": 20000.0}}}
    merged = merge_patches(old, new)
    assert leaves(merged) == {
        "risk.limits.max_contracts_per_symbol": 1,
        "risk.limits.max_total_contracts": None,
        "risk.margins.NQ": 20000.0,
    }


async def test_a_change_writes_its_row_and_the_overlay_in_one_go(db_url: str, tmp_path: Path) -> None:
    start = _settings(tmp_path, db_url)
    repo = await Repository.connect(db_url)
    try:
        p1 = {"risk": {"limits": {"max_contracts_per_symbol": 1}}}
        p2 = {"risk": {"limits": {"max_total_contracts": 3}}}
        c1, v1 = await record_live_change(repo, at=AT, actor="api", patch=p1, base=base_values(start, p1))
        c2, v2 = await record_live_change(repo, at=AT, actor="api", patch=p2, base=base_values(start, p2))
        live = await read_live(repo)
        changes = await config_changes(repo)
    finally:
        await repo.close()
    assert (v1, v2) == (1, 2) and live.overlay.version == 2 and live.overlay.change_id == c2
    assert [c["id"] for c in changes] == [c2, c1]
    assert live.overlay.base == {
        "risk.limits.max_contracts_per_symbol": 5,
        "risk.limits.max_total_contracts": start.risk.limits.max_total_contracts,
    }
    eff, stale = effective_settings(start, live.overlay)
    assert eff.risk.limits.max_contracts_per_symbol == 1 and eff.risk.limits.max_total_contracts == 3
    assert stale == [] and not live.halt.halted


def test_a_new_config_value_wins_over_the_patch_it_replaced(tmp_path: Path) -> None:
    """The overlay outlives a restart; but a key whose start-up value changed since it was patched is the
    config file's again (and reported), while the other patched keys stay in force."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    overlay = LiveOverlay(
        version=3,
        patch={"risk": {"limits": {"max_contracts_per_symbol": 1, "max_orders_per_minute": 7}}},
        base={"risk.limits.max_contracts_per_symbol": 5, "risk.limits.max_orders_per_minute": 30},
    )
    same_file = Settings(
        store={"url": url},
        risk={"limits": {"max_contracts_per_symbol": 5, "max_orders_per_minute": 30}},
    )
    new_file = Settings(
        store={"url": url},
        risk={"limits": {"max_contracts_per_symbol": 8, "max_orders_per_minute": 30}},
    )
    kept, stale_kept = effective_settings(same_file, overlay)
    fresh, stale_fresh = effective_settings(new_file, overlay)
    assert (kept.risk.limits.max_contracts_per_symbol, kept.risk.limits.max_orders_per_minute) == (1, 7)
    assert stale_kept == []
    assert (fresh.risk.limits.max_contracts_per_symbol, fresh.risk.limits.max_orders_per_minute) == (8, 7)
    assert stale_fresh == ["risk.limits.max_contracts_per_symbol"]


async def test_the_halt_is_the_desks_persisted_state(db_url: str, tmp_path: Path) -> None:
    repo = await Repository.connect(db_url)
    try:
        assert not (await read_halt(repo)).halted
        await DeskStore(repo).set_state(
            "desk", {"halted": True, "halt_reason": "kill switch: test", "halted_by": "ops"}, at=AT
        )
        halt = await read_halt(repo)
    finally:
        await repo.close()
    sync = read_live_sync(db_url)  # what an actor's __init__ reads
    assert halt.halted and halt.reason == "kill switch: test" and halt.by == "ops"
    assert sync.halt == halt and sync.overlay.version == 0
