# Vermilion's image: `vermilion-server` as the entry point, also reachable as
# `redis-server` so the article's `command: [redis-server, /redis-master/redis.conf]`
# works verbatim. Debian's redis-tools gives the probes `redis-cli` (milliseconds of CPU
# where a Python start costs ~90 ms), and Debian's redis-sentinel (Redis 7.0.15, the
# Sentinel Redis users already run) is the HA sidecar of `render --replicas 3`: one
# image for both containers of a pod, with redis-cli and redis-sentinel of one version.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY vermilion ./vermilion
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
COPY --from=build /wheels /wheels
# The redis user first (uid 999, the pods' runAsUser): Debian's packages then reuse it.
RUN groupadd --system --gid 999 redis \
    && useradd --system --uid 999 --gid redis --home-dir /redis-master-data redis \
    && apt-get update \
    && apt-get install -y --no-install-recommends redis-tools redis-sentinel \
    && rm -rf /var/lib/apt/lists/* \
    && pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && ln -s "$(command -v vermilion-server)" /usr/local/bin/redis-server \
    && mkdir -p /redis-master-data /redis-master \
    && chown redis:redis /redis-master-data
USER 999:999
WORKDIR /redis-master-data
EXPOSE 6379 26379
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s CMD ["redis-cli", "-e", "-p", "6379", "PING"]
ENTRYPOINT []
CMD ["vermilion-server", "/redis-master/redis.conf"]
