"""GPU only (``make test-gpu``; needs an NVIDIA GPU and ``pip install -e .[gpu]``): deploy
serve_configs/llm-gpu.yaml on Ray Serve (vLLM) and answer a structured request through the router."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml
from pydantic import BaseModel, Field

from nq_ray.llm import LLMConfig, LLMRouter, ProviderConfig

ROOT = Path(__file__).resolve().parents[2]
KNOWN = ("GB300", "GB200", "B300", "B200", "H200", "H100", "H20", "A100", "L40S", "L4", "A10G", "T4", "V100")

pytestmark = [pytest.mark.gpu, pytest.mark.timeout(1800)]


class Bias(BaseModel):
    bias: str = Field(pattern="^(bullish|bearish|neutral)$")
    confidence: float = Field(ge=0, le=1)


def local_accelerator() -> str:
    name = subprocess.run(
        ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()[0]
    return next(k for k in KNOWN if k in name.upper().replace(" ", ""))


async def test_llm_gpu_yaml_deploys_and_serves_the_router() -> None:
    import ray
    from ray import serve
    from ray.serve.llm import build_openai_app  # the GPU path: needs vLLM

    app_cfg = yaml.safe_load((ROOT / "serve_configs/llm-gpu.yaml").read_text())["applications"][0]
    model = yaml.safe_load((ROOT / app_cfg["args"]["llm_configs"][0]).read_text())
    model["accelerator_type"] = local_accelerator()  # the YAML names the production GPU type
    model["deployment_config"]["autoscaling_config"] = {"min_replicas": 1, "max_replicas": 1}
    model_id = model["model_loading_config"]["model_id"]
    ray.init(ignore_reinit_error=True)
    try:
        serve.run(
            build_openai_app({"llm_configs": [model]}), name="llm", route_prefix=app_cfg["route_prefix"]
        )
        base = f"http://127.0.0.1:8000{app_cfg['route_prefix']}/v1"
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            try:
                if model_id in httpx.get(f"{base}/models", timeout=5).text:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(5)
        router = LLMRouter.from_config(
            LLMConfig(
                providers=[
                    ProviderConfig(
                        name="serve", kind="serve", base_url=base, model=model_id, priority=1, timeout_s=120
                    )
                ],
                health_interval_s=0,
            )
        )

        result = await router.chat(
            [{"role": "user", "content": "NQ trades above VWAP with RSI 62 and a rising EMA stack. Bias?"}],
            task="technical_analysis",
            response_model=Bias,
        )
        stream = await router.chat([{"role": "user", "content": "Say hello."}], stream=True)
        text = await stream.text()

        assert result.provider == "serve" and result.is_llm and isinstance(result.parsed, Bias)
        assert result.usage.completion_tokens > 0 and text
        await router.aclose()
    finally:
        serve.shutdown()
        ray.shutdown()
