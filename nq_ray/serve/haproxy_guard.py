"""The HAProxy that Serve starts, with the three things Serve's config template hard-codes put right.

Ray Serve 2.60 renders HAProxy's config from a fixed template: the admin socket is ``mode 666 level
admin`` (anyone on the host who can reach the file can reconfigure or stop the proxy), the stats page
binds ``*:8404`` and the Prometheus exporter ``:9101`` on every interface, and none of this has a setting.
Serve does take the binary's path (``RAY_SERVE_HAPROXY_BINARY_PATH``), so ``nq-ray up`` points it at a
two-line wrapper that runs this file: it rewrites the config Serve just wrote (``-f PATH``) in place, then
``exec``s the real HAProxy with the same arguments (same pid, same command line, so Serve's own process
checks hold):

- the admin socket becomes ``mode 600`` (its directory is 0700 too);
- the stats page and the exporter bind 127.0.0.1 on the instance's ports, or are removed when off;
- it fails closed: a config with any other ``bind`` than the HTTP frontend Serve was given, or without
  the socket line it expects (a Serve upgrade changed the template), is refused, and HAProxy does not
  start.

Standard library only: it runs as ``python -S haproxy_guard.py`` for every HAProxy (re)start.
"""

from __future__ import annotations

import os
import re
import sys

SOCKET_LINE = re.compile(r"^(\s*stats socket \S+ )mode 666( level admin\b.*)$", re.MULTILINE)


class GuardError(Exception):
    """The config is not the shape this guard knows; HAProxy must not start with it."""


def _sections(text: str) -> list[list[str]]:
    """The config as sections: each a list of lines, the first one the unindented section header."""
    out: list[list[str]] = [[]]
    for line in text.splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            out.append([line])
        else:
            out[-1].append(line)
    return [s for s in out if s]


def _rebind(section: list[str], port: int | None) -> list[str]:
    """``section`` bound to 127.0.0.1:``port``; nothing when ``port`` is None (off)."""
    if port is None:
        return []
    out = []
    for line in section:
        if line.strip().startswith("bind "):
            indent = line[: len(line) - len(line.lstrip())]
            line = f"{indent}bind 127.0.0.1:{port}"
        out.append(line)
    return out


def harden(text: str, *, frontends: set[str], stats_port: int | None, metrics_port: int | None) -> str:
    """The config with the admin socket at mode 600 and stats/metrics on loopback (or removed).

    ``frontends`` are the ``bind`` addresses Serve may use for traffic (``host:port`` of the HTTP
    frontend); any other bind is a ``GuardError``."""
    text, n = SOCKET_LINE.subn(r"\1mode 600\2", text)
    if n != 1:
        raise GuardError("no 'stats socket ... mode 666 level admin' line to restrict")
    kept: list[str] = []
    for section in _sections(text):
        header = section[0].split()
        if header[:2] == ["frontend", "prometheus"]:
            section = _rebind(section, metrics_port)
        elif header[:2] == ["listen", "stats"]:
            section = _rebind(section, stats_port)
        kept.extend(section)
    allowed = set(frontends)
    allowed |= {f"127.0.0.1:{p}" for p in (stats_port, metrics_port) if p is not None}
    for line in kept:
        words = line.split()
        if words[:1] == ["bind"] and words[1] not in allowed:
            raise GuardError(f"unexpected listener {' '.join(words)!r} (allowed: {sorted(allowed)})")
    return "\n".join(kept) + "\n"


def _port(value: str) -> int | None:
    return int(value) if value and value != "off" else None


def main(argv: list[str]) -> int:
    """``haproxy_guard.py REAL_BINARY FRONTENDS STATS METRICS -- haproxy args...`` (FRONTENDS is a comma
    list of host:port; STATS/METRICS a port or ``off``)."""
    real, frontends, stats, metrics, sep, *args = argv
    if sep != "--":
        raise SystemExit("usage: haproxy_guard.py REAL FRONTENDS STATS METRICS -- ARGS...")
    if "-f" in args:
        path = args[args.index("-f") + 1]
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        try:
            text = harden(
                text,
                frontends=set(frontends.split(",")),
                stats_port=_port(stats),
                metrics_port=_port(metrics),
            )
        except GuardError as exc:
            print(f"nq-ray haproxy guard: refusing to start HAProxy: {exc}", file=sys.stderr)
            return 1
        tmp = f"{path}.nq-guard"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    os.execv(real, [real, *args])
    return 0  # pragma: no cover  (execv does not return)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
