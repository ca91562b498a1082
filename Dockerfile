# The gateway's container image.
#
#   docker build -t llm-cost-gateway .          # python:3.12-slim, packages from the index
#   python3.12 -m pip wheel -w deploy/wheelhouse . "setuptools>=68" wheel
#   docker build --network none -t llm-cost-gateway .      # offline, from that wheelhouse
#
# The wheelhouse must hold wheels for the base's Python (and the build backend, for building
# the gateway itself); deploy/README.md shows how to make one for another Python than the
# host's.
#
# BASE is any Debian-like image with python3 (≥ 3.11) and its venv module: python:3.12-slim
# (python under /usr/local) or a `debootstrap` bookworm with python3 and python3-venv (Debian's
# 3.11 under /usr), which is how CI builds it. Both stages use the same BASE, so the venv's
# interpreter symlink points at a python that exists in the final stage too.
# See deploy/README.md for running it.
ARG BASE=python:3.12-slim

FROM ${BASE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/gateway
ENV PATH=/opt/gateway/bin:$PATH
# When deploy/wheelhouse/ holds wheels, everything installs from it and nothing else
# (--no-index): the build needs no network. An empty wheelhouse installs from the index.
# Dependencies go first, in their own layer, so a code change does not reinstall them; the
# gateway itself is always installed from the source below, never from a wheel that may be
# stale.
COPY deploy/wheelhouse/ /wheelhouse/
RUN if ls /wheelhouse/*.whl >/dev/null 2>&1; then \
        pip install --no-cache-dir --no-index /wheelhouse/*.whl; \
    fi
COPY pyproject.toml README.md /src/
COPY gateway/ /src/gateway/
COPY benchmarks/ /src/benchmarks/
RUN if ls /wheelhouse/*.whl >/dev/null 2>&1; then \
        pip install --no-cache-dir --no-index --find-links /wheelhouse \
            --no-deps --force-reinstall /src \
        && pip check; \
    else \
        pip install --no-cache-dir /src; \
    fi \
    && gateway --help >/dev/null

# The final stage: the base image, the venv and the configs. No compiler, no pip cache, no
# wheelhouse, no source tree.
FROM ${BASE}
ENV PATH=/opt/gateway/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LANG=C.UTF-8 \
    GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8080 \
    GATEWAY_CONFIG=/app/config/demo.yaml
RUN groupadd --gid 10001 gateway \
    && useradd --no-log-init --uid 10001 --gid gateway --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin gateway \
    && mkdir -p /data \
    && chown gateway:gateway /data
COPY --from=build /opt/gateway /opt/gateway
COPY config/ /app/config/
# The working directory is the data directory: the demo's SQLite ledger (./gateway.db) lands
# in /data, which a volume can hold. Other configs are mounted anywhere and named by
# GATEWAY_CONFIG; GATEWAY_DATABASE_URL overrides the config's database_url.
WORKDIR /data
# numeric, so Kubernetes can verify runAsNonRoot without reading /etc/passwd
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('GATEWAY_PORT', '8080'), timeout=2)"]
# `gateway` is PID 1 (exec form, no shell in between): on SIGTERM it drains (README "Stopping:
# the drain": not ready at once, serving `server.drain_delay_s` (5 s) more, then finishing the
# requests in flight for up to `server.drain_timeout_s` (30 s)), then flushes the ledger writer's
# queue before the process exits. Give it that long: `docker stop -t 45`, compose's
# stop_grace_period, Kubernetes' terminationGracePeriodSeconds.
STOPSIGNAL SIGTERM
ENTRYPOINT ["gateway"]
CMD ["serve"]
