"""Agent tools (the ``agents`` toolset): the trading desk's agents, and a seed task run on one of them.

They reach the desk through its port (``ToolContext.desk()``, an ``nq_ray.ports.AgentsPort``): the
runtime's one desk (``nq_ray.runtime.Runtime.shared_desk``), the one the agents API
(``POST /api/agents/{agent_id}/tasks``) uses, so a task run here and one run there land in the same
decision log, under the same halt and budgets. This layer never imports the agents code.

Orders: a ``place_trade`` task places a paper order through the agent's ``place_order`` call, so the
risk gate judges it as always. Under the desk's approval mode an MCP ``place_order`` waits for a person
(``nq_ray.tools.mcp_elicit``); a ``place_trade`` task would not, so in approval mode it is refused here
(``confirmation_required``, nothing sent) and the answer points to ``place_order``, which asks.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field

from nq_ray.errors import NQRayError
from nq_ray.tools.context import current

MAX_TASK_PARAMETERS_BYTES = 64 * 1024  # an update_context's whole context fits; anything more is refused
MAX_TASK_PARAMETERS_DEPTH = 16
ORDER_TASK = "place_trade"  # the task that places an order (held in approval mode)


class ConfirmationRequiredError(NQRayError):
    """Approval mode is on and a task would place an order nobody confirmed: nothing was sent."""

    code = "confirmation_required"
    http_status = 409


def _depth(x: Any, level: int = 0) -> int:
    if level > MAX_TASK_PARAMETERS_DEPTH:
        return level
    if isinstance(x, dict):
        return max((_depth(v, level + 1) for v in x.values()), default=level + 1)
    if isinstance(x, list):
        return max((_depth(v, level + 1) for v in x), default=level + 1)
    return level


def bounded_parameters(v: dict[str, Any]) -> dict[str, Any]:
    """A task's parameters, refused (``ValueError``) over ``MAX_TASK_PARAMETERS_BYTES`` of JSON or deeper
    than ``MAX_TASK_PARAMETERS_DEPTH`` levels (the agents API's bounds too)."""
    size = len(json.dumps(v, separators=(",", ":"), default=str).encode())
    if size > MAX_TASK_PARAMETERS_BYTES:
        raise ValueError(f"parameters are {size} bytes; the limit is {MAX_TASK_PARAMETERS_BYTES}")
    if _depth(v) > MAX_TASK_PARAMETERS_DEPTH:
        raise ValueError(f"parameters nest deeper than {MAX_TASK_PARAMETERS_DEPTH} levels")
    return v


AgentId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="the agent (list_agents): analysis_agent, risk_agent, execution_agent or one created "
        "through the agents API",
    ),
]
TaskType = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[a-z][a-z_]*$",
        description="a task type the agent runs (its tasks in list_agents), e.g. market_analysis",
        examples=["market_analysis"],
    ),
]
TaskParameters = Annotated[
    dict[str, Any],
    AfterValidator(bounded_parameters),
    Field(
        default_factory=dict,
        description='the task\'s parameters, e.g. {"symbol": "NQ", "timeframe": "1h", '
        '"analysis_depth": "standard"} '
        f"(JSON, at most {MAX_TASK_PARAMETERS_BYTES} bytes, {MAX_TASK_PARAMETERS_DEPTH} levels deep)",
    ),
]


class AgentInfo(BaseModel):
    """One of the desk's agents."""

    agent_id: str
    agent_type: str = Field(description="analysis, risk or execution")
    tasks: list[str] = Field(description="the task types it runs (run_agent_task's type)")
    default: bool = Field(description="one of the desk's three default agents (they cannot be deleted)")
    created_at: str | None = None
    config: dict[str, Any] = Field(
        default_factory=dict, description="its config: provider, model, temperature, tools, budget, prompts"
    )


class AgentList(BaseModel):
    """The desk's agents."""

    agents: list[AgentInfo]


class AgentTaskResult(BaseModel):
    """A task's answer: the agent, the task type, the decision-log row it was recorded as, the result."""

    agent_id: str
    type: str
    record_id: int = Field(description="its row in the decision log (GET /api/decisions/{record_id})")
    result: dict[str, Any] = Field(
        description="the agent's typed result: an analysis report (market_analysis), a risk assessment "
        "(assess_risk), an execution report (place_trade), a task report (the others)"
    )


async def list_agents() -> AgentList:
    """The trading desk's agents: each one's id, kind (analysis, risk, execution), the task types it
    runs (what run_agent_task takes as type) and its config."""
    rows = await current().desk().list_agents()
    return AgentList(agents=[AgentInfo.model_validate(r) for r in rows])


async def run_agent_task(agent_id: AgentId, type: TaskType, parameters: TaskParameters) -> AgentTaskResult:
    """Run one of the seed's tasks on a desk agent and record it in the decision log, as
    POST /api/agents/{agent_id}/tasks does: market_analysis, pattern_recognition, market_summary
    (analysis_agent; parameters symbol, timeframe, analysis_depth quick|standard|comprehensive),
    assess_risk (risk_agent; an analysis report), place_trade and manage_position (execution_agent:
    place_trade sends a paper order through the risk gate), update_context, get_recent_memory,
    get_memory_by_type (any agent). When the desk's approval mode is on, place_trade is refused
    (nothing is sent): place the order with place_order, which asks you to confirm it."""
    ctx = current()
    desk = ctx.desk()
    if type == ORDER_TASK:
        from nq_ray.tools.mcp_elicit import approval_mode

        if await approval_mode(ctx.settings.store_url):
            raise ConfirmationRequiredError(
                "approval mode is on: a place_trade task would send an order nobody confirmed, so it is "
                "refused and nothing was sent; place the order with the place_order tool, which asks you "
                "to confirm it (or queues it for approval)",
                agent_id=agent_id,
                use="place_order",
            )
    out = await desk.agent_task(agent_id, {"type": type, "parameters": parameters})
    return AgentTaskResult(agent_id=agent_id, type=type, record_id=out["record_id"], result=out["result"])
