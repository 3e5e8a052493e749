# Vermilion's image: `vermilion-server` as the entry point, also reachable as
# `redis-server` so the article's `command: [redis-server, /redis-master/redis.conf]`
# works verbatim, and `vermilion ping` for the probes.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY vermilion ./vermilion
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && ln -s "$(command -v vermilion-server)" /usr/local/bin/redis-server \
    && groupadd --system --gid 999 redis \
    && useradd --system --uid 999 --gid redis --home-dir /redis-master-data redis \
    && mkdir -p /redis-master-data /redis-master \
    && chown redis:redis /redis-master-data
USER 999:999
WORKDIR /redis-master-data
EXPOSE 6379
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s CMD ["vermilion", "ping", "-p", "6379"]
ENTRYPOINT []
CMD ["vermilion-server", "/redis-master/redis.conf"]
