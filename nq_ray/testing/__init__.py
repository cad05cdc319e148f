"""Test infrastructure that ships with the package: real local servers whose answers tests script."""

from nq_ray.testing.llm_server import ScriptedLLMServer, Step, free_port

__all__ = ["ScriptedLLMServer", "Step", "free_port"]
