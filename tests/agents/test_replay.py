"""``replay_decision``: a recorded desk decision rebuilt point in time and decided again, with a diff."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from nq_ray.agents.agents import AnalysisAgent, ExecutionAgent, LocalTools, RiskAgent
from nq_ray.agents.desk import TradingDesk
from nq_ray.agents.replay import format_replay, replay_decision
from nq_ray.config import Settings
from nq_ray.errors import InvalidArgumentError, NotFoundError
from nq_ray.llm.config import ProviderConfig
from nq_ray.llm.router import LLMRouter
from nq_ray.store.desk import DeskStore
from nq_ray.store.repository import Repository
from nq_ray.testing import ScriptedLLMServer
from nq_ray.tools.context import ToolContext
from nq_ray.tools.registry import build_registry

RULES = ProviderConfig(name="rules", kind="rules", model="nq-rules-v1", priority=1000)
AS_OF = pd.Timestamp("2026-04-15T11:05", tz="America/New_York")  # the desk decided when 11:00 closed


def view(bias: str, confidence: float) -> str:
    return json.dumps(
        {
            "bias": bias,
            "confidence": confidence,
            "key_levels": [26000.0],
            "invalidation": None,
            "horizon": "intraday",
            "reasoning": f"scripted {bias}",
        }
    )


@pytest.fixture
def bars_file(tmp_path: Path, nq_5m: pd.DataFrame) -> Path:
    """The sample bars as the user's own file, so a test can change the data after the decision."""
    path = tmp_path / "data" / "nq.parquet"  # in the data dir of rules_settings: a data root
    path.parent.mkdir(parents=True, exist_ok=True)
    nq_5m.rename_axis("datetime").reset_index().to_parquet(path, index=False)
    return path


async def record(
    settings: Settings, source: str, router: LLMRouter, provider: str | None = None, at: pd.Timestamp = AS_OF
) -> int:
    """One real ``TradingDesk.run_once`` at ``at`` (approval mode: nothing is sent); its decision id."""
    tools = LocalTools(build_registry(ToolContext(settings=settings).point_in_time(at)))
    repo = await Repository.connect(settings.store_url)
    try:
        cfg = {"provider": provider} if provider else None
        desk = TradingDesk(
            AnalysisAgent(tools, router, config=cfg, source=source),
            RiskAgent(tools, source=source),
            ExecutionAgent(tools),
            repo,
            store=DeskStore(repo),
        )
        out = await desk.run_once("NQ", approval_mode=True)
        return int(out["decision_id"])
    finally:
        await repo.close()


def rules_settings(tmp_path: Path) -> Settings:
    return Settings(
        data={"data_dir": str(tmp_path / "data")}, llm={"providers": [RULES], "health_interval_s": 0}
    )


async def test_rules_decision_replays_identically(tmp_path: Path, bars_file: Path) -> None:
    settings = rules_settings(tmp_path)
    source = f"parquet:{bars_file}"
    decision_id = await record(settings, source, LLMRouter.from_config(settings.llm))

    result = await replay_decision(settings, decision_id)

    assert result.window_match and result.prompt_match and result.same and result.differences == []
    assert pd.Timestamp(result.as_of) == AS_OF
    assert result.original["view"]["bias"] == result.replay["view"]["bias"]
    assert "identical" in format_replay(result)


async def test_a_decision_taken_between_bars_replays_with_its_own_context_time(
    tmp_path: Path, bars_file: Path
) -> None:
    """Decided at 11:07 (the 11:05 bar still open): the replay's tools stand at 11:05, the close of the
    window's last bar, but the context is rebuilt as of the recorded 11:07 — the same prompt."""
    settings = rules_settings(tmp_path)
    at = AS_OF + pd.Timedelta(minutes=2)
    decision_id = await record(settings, f"parquet:{bars_file}", LLMRouter.from_config(settings.llm), at=at)

    result = await replay_decision(settings, decision_id)

    assert pd.Timestamp(result.as_of) == AS_OF and result.prompt_match and result.same


async def test_changed_data_is_reported_and_the_decision_rerun(tmp_path: Path, bars_file: Path) -> None:
    settings = rules_settings(tmp_path)
    source = f"parquet:{bars_file}"
    decision_id = await record(settings, source, LLMRouter.from_config(settings.llm))
    frame = pd.read_parquet(bars_file)
    corrected = frame["datetime"] == pd.Timestamp("2026-04-15T10:00", tz="America/New_York")
    assert corrected.sum() == 1
    frame.loc[corrected, "volume"] += 1  # the source corrects a bar inside the decision's window
    frame.to_parquet(bars_file, index=False)

    result = await replay_decision(settings, decision_id)

    assert not result.window_match and result.data_note and "changed" in result.data_note
    assert result.window["rebuilt_sha256"] != result.window["sha256"]
    assert "DIFFERS" in format_replay(result)


@pytest.fixture
def servers() -> Iterator[tuple[ScriptedLLMServer, ScriptedLLMServer]]:
    with (
        ScriptedLLMServer(default_text=view("long", 0.8)) as first,
        ScriptedLLMServer(default_text=view("short", 0.3)) as second,
    ):
        yield first, second


def llm_settings(tmp_path: Path, first: ScriptedLLMServer, second: ScriptedLLMServer) -> Settings:
    def prov(name: str, srv: ScriptedLLMServer, priority: int) -> dict[str, Any]:
        return {
            "name": name,
            "kind": "serve",
            "base_url": srv.base_url,
            "model": f"{name}-model",
            "priority": priority,
            "timeout_s": 5,
        }

    llm = {
        "providers": [prov("alpha", first, 10), prov("beta", second, 20), RULES.model_dump()],
        "health_interval_s": 0,
    }
    return Settings(data={"data_dir": str(tmp_path / "data")}, llm=llm)


async def test_llm_decision_replays_from_the_recorded_answer_without_asking_again(
    tmp_path: Path, servers: tuple[ScriptedLLMServer, ScriptedLLMServer]
) -> None:
    first, second = servers
    settings = llm_settings(tmp_path, first, second)
    decision_id = await record(settings, "sample", LLMRouter.from_config(settings.llm), provider="alpha")
    asked = len(first.requests)

    result = await replay_decision(settings, decision_id)

    assert asked == 1 and len(first.requests) == 1 and len(second.requests) == 0
    assert result.from_cache and result.prompt_match and result.same
    assert result.original_model == "alpha/alpha-model" and result.replay_model == "alpha/alpha-model"


async def test_another_model_is_asked_and_the_differences_shown(
    tmp_path: Path, servers: tuple[ScriptedLLMServer, ScriptedLLMServer]
) -> None:
    first, second = servers
    settings = llm_settings(tmp_path, first, second)
    decision_id = await record(settings, "sample", LLMRouter.from_config(settings.llm), provider="alpha")

    result = await replay_decision(settings, decision_id, provider="beta", model="beta-2")

    assert len(second.requests) == 1 and second.requests[0]["model"] == "beta-2"
    # the second model read exactly the inputs the first one did
    assert second.requests[0]["messages"][1] == first.requests[0]["messages"][1]
    fields = {d.field: (d.original, d.replay) for d in result.differences}
    assert fields["view.bias"] == ("long", "short") and fields["view.confidence"] == (0.8, 0.3)
    assert not result.same and result.replay_model == "beta/beta-2" and not result.from_cache
    assert "view.bias" in format_replay(result) and "'long' → 'short'" in format_replay(result)


async def test_unknown_or_bad_ids_are_typed_errors(tmp_path: Path) -> None:
    settings = rules_settings(tmp_path)

    with pytest.raises(NotFoundError):
        await replay_decision(settings, 999)
    with pytest.raises(InvalidArgumentError):
        await replay_decision(settings, 0)


async def test_fresh_replay_asks_the_recorded_model_again(
    tmp_path: Path, servers: tuple[ScriptedLLMServer, ScriptedLLMServer]
) -> None:
    first, second = servers
    settings = llm_settings(tmp_path, first, second)
    decision_id = await record(settings, "sample", LLMRouter.from_config(settings.llm), provider="alpha")

    result = await replay_decision(settings, decision_id, fresh=True)

    assert len(first.requests) == 2 and first.requests[1]["messages"] == first.requests[0]["messages"]
    assert not result.from_cache and result.same and result.replay_model == "alpha/alpha-model"
