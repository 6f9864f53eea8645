# letta-otel container image: slim, non-root, state on a volume, health-checked.
#
#   docker build -t letta-otel .
#   docker run -d --name letta-otel -v letta-otel-state:/var/lib/letta-otel \
#     -e LETTA_BASE_URL=https://api.letta.com -e LETTA_API_KEY \
#     -e LETTA_OTEL_BACKEND=honeycomb -e HONEYCOMB_API_KEY letta-otel
#
# Configuration is the usual environment (see README "Configuration"); secrets come from
# the environment or a mounted --config file, never from build arguments.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY letta_otel ./letta_otel
RUN python -m venv /opt/letta-otel \
 && /opt/letta-otel/bin/pip install . \
 && find /opt/letta-otel -name '__pycache__' -prune -exec rm -rf {} +

FROM python:3.11-slim
LABEL org.opencontainers.image.title="letta-otel" \
      org.opencontainers.image.description="Bridge Letta agent activity into OpenTelemetry" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 letta-otel \
 && useradd --system --uid 10001 --gid letta-otel --home-dir /var/lib/letta-otel \
      --shell /usr/sbin/nologin letta-otel \
 && install -d -o letta-otel -g letta-otel -m 0700 /var/lib/letta-otel
COPY --from=build /opt/letta-otel /opt/letta-otel
ENV PATH=/opt/letta-otel/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LETTA_OTEL_STATE_PATH=/var/lib/letta-otel/letta-otel.db
USER letta-otel:letta-otel
WORKDIR /var/lib/letta-otel
VOLUME ["/var/lib/letta-otel"]
# Health and metrics (GET /healthz, /readyz, /metrics) on LETTA_OTEL_HEALTH_ADDR,
# default 127.0.0.1:9464: the health check runs inside the container, so loopback is
# enough. Publish it (LETTA_OTEL_HEALTH_ADDR=0.0.0.0:9464) only to scrape /metrics.
EXPOSE 9464
# No curl in the slim image: python does the request.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=4)"]
# SIGTERM finishes the batch in flight, commits it and exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["letta-otel"]
CMD ["run"]
