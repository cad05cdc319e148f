# syntax=docker/dockerfile:1
# nq-ray, CPU image: the Ray head (Serve app + UI) and the CPU Ray workers of docker-compose.yml and
# kuberay/. Build: docker build -t nq-ray:0.1.0 .
#
# The install steps are the ones `make setup` runs (Makefile, the $(STAMP) recipe): a venv at .venv,
# then pip/setuptools/wheel upgraded, then the package in editable mode with the same extras.
# tests/deploy/test_docker.py checks that they stay the same.
FROM python:3.11-slim-bookworm

ARG NQ_EXTRAS=dev,bench

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/app/.venv \
    PATH=/app/.venv/bin:$PATH \
    RAY_USAGE_STATS_ENABLED=0 \
    NQ_DATA__DATA_DIR=/data

# bash and wget: KubeRay's probes exec them; curl: the compose health checks; tini: PID 1 reaps Ray's children.
RUN apt-get update \
    && apt-get install -y --no-install-recommends bash ca-certificates curl wget tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 ray \
    && mkdir -p /app /data \
    && chown ray:ray /app /data

WORKDIR /app
USER ray

COPY --chown=ray:ray pyproject.toml README.md Makefile ./
COPY --chown=ray:ray nq_ray ./nq_ray
COPY --chown=ray:ray serve_configs ./serve_configs
COPY --chown=ray:ray models ./models
COPY --chown=ray:ray ui ./ui
COPY --chown=ray:ray benchmarks ./benchmarks
COPY --chown=ray:ray tests ./tests

RUN python -m venv .venv
RUN .venv/bin/pip install -q --upgrade pip setuptools wheel
RUN .venv/bin/pip install -q -e ".[${NQ_EXTRAS}]"

VOLUME ["/data"]
# 6379 Ray GCS, 8265 Ray dashboard / jobs API, 8000 Serve HTTP (API, MCP, UI), 8080 Ray metrics export,
# 10001 Ray client.
EXPOSE 6379 8265 8000 8080 10001

ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["nq-ray", "--help"]
