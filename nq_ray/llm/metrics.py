"""Export the usage ledger as Ray metrics (Prometheus through the Ray dashboard agent).

``UsageLedger(sinks=[RayMetricsSink()])`` inside a Ray worker, actor or Serve replica (``ray.init`` done);
``ray.util.metrics`` is imported only here, so the core stays free of Ray.
"""

from __future__ import annotations

from nq_ray.llm.accounting import UsageRecord

LATENCY_BUCKETS_S = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60]


class RayMetricsSink:
    """Counters of requests, tokens and cost, and a latency histogram, tagged by provider/model/caller."""

    def __init__(self, prefix: str = "nq_llm") -> None:
        from ray.util.metrics import Counter, Histogram

        tags = ("provider", "model", "caller")
        self.requests = Counter(
            f"{prefix}_requests_total", description="LLM requests by outcome", tag_keys=(*tags, "outcome")
        )
        self.tokens = Counter(f"{prefix}_tokens_total", description="LLM tokens", tag_keys=(*tags, "type"))
        self.cost = Counter(
            f"{prefix}_cost_usd_total", description="estimated LLM cost in USD", tag_keys=tags
        )
        self.latency = Histogram(
            f"{prefix}_latency_seconds",
            description="LLM request latency",
            boundaries=LATENCY_BUCKETS_S,
            tag_keys=("provider", "model"),
        )

    def record(self, rec: UsageRecord) -> None:
        tags = {"provider": rec.provider, "model": rec.model, "caller": rec.caller}
        outcome = "cached" if rec.cached else "ok" if rec.ok else "error"
        self.requests.inc(1, tags={**tags, "outcome": outcome})
        if rec.prompt_tokens:
            self.tokens.inc(rec.prompt_tokens, tags={**tags, "type": "prompt"})
        if rec.completion_tokens:
            self.tokens.inc(rec.completion_tokens, tags={**tags, "type": "completion"})
        if rec.cost_usd:
            self.cost.inc(rec.cost_usd, tags=tags)
        self.latency.observe(rec.latency_s, tags={"provider": rec.provider, "model": rec.model})
