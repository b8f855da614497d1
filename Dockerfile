# syntax=docker/dockerfile:1
# The IVS participant-token service: a small, non-root image with no secret or key in it.
#
#   docker build -t ivs-token-service .
#   docker run -p 8080:8080 -e TOKEN_SERVICE_AUTH_SHARED_SECRET_FILE=... ivs-token-service
#
# Stage 1 builds the package's wheel with the locked build backend and installs it into a
# virtual environment holding exactly the locked runtime set (requirements/runtime.txt,
# every package pinned with its hashes: what was tested is what ships); stage 2 copies only
# that environment onto a clean slim base. Configuration (secrets included) comes from the
# environment and mounted files at run time; see deploy/ and docs/operations.md.
# tests/e2e/test_container_start.py runs this file's install lines, ENV, CMD and
# HEALTHCHECK from a virtual environment built the same way, and
# tests/deploy/test_container_dockerfile.py lints it with hadolint and holds it to the lock.

FROM python:3.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# The dependencies first, from the lock alone, so this layer is rebuilt only when it changes.
COPY requirements/build.txt requirements/runtime.txt ./requirements/
RUN python -m venv /opt/build \
    && /opt/build/bin/python -m pip install --require-hashes -r requirements/build.txt \
    && python -m venv /opt/token-service \
    && /opt/token-service/bin/python -m pip install --require-hashes -r requirements/runtime.txt
# Only what the wheel is built from (.dockerignore keeps everything else out of the context).
COPY pyproject.toml README.md LICENSE ./
COPY token_service ./token_service
RUN /opt/build/bin/python -m pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
    && /opt/token-service/bin/python -m pip install --no-deps /wheels/*.whl


FROM python:3.11-slim-bookworm

LABEL org.opencontainers.image.title="ivs-token-service" \
      org.opencontainers.image.description="Amazon IVS real-time participant-token service" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed numeric uid/gid, so Kubernetes' runAsNonRoot can verify it and volumes can be
# owned by it. keys/ (signing keys) and state/ (the emulator's --state file in the local
# compose stack) exist, owned by that user, so Docker volumes mounted there inherit it;
# under Kubernetes a read-only Secret is mounted on keys/ instead.
RUN groupadd --system --gid 10001 token-service \
    && useradd --system --no-log-init --uid 10001 --gid 10001 \
       --home-dir /var/lib/token-service --shell /usr/sbin/nologin token-service \
    && mkdir -p /var/lib/token-service/keys /var/lib/token-service/state \
    && chown -R 10001:10001 /var/lib/token-service

COPY --from=build /opt/token-service /opt/token-service

ENV PATH="/opt/token-service/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# The service's own settings are left to the run time (docker run -e, compose, a
# ConfigMap): defaults are one worker on port 8080 (TOKEN_SERVICE_WORKERS, _PORT), JSON
# logs when there is no terminal, and keys in ./keys, which is /var/lib/token-service/keys.
WORKDIR /var/lib/token-service
USER 10001:10001
EXPOSE 8080

# No curl in the image: the interpreter asks /healthz on the configured port itself.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('TOKEN_SERVICE_PORT', '8080') + '/healthz', timeout=2)"]

# SIGTERM: stop accepting, finish requests in flight (TOKEN_SERVICE_SHUTDOWN_TIMEOUT_SECONDS),
# close Redis and IVS clients, exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["token-service"]
# Every interface inside the container; the port comes from TOKEN_SERVICE_PORT (8080).
CMD ["serve", "--host", "0.0.0.0"]
