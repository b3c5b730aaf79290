# syntax=docker/dockerfile:1
# pgvector-exporter: Prometheus exporter and maintenance sidecar for PostgreSQL + pgvector.
#
#   docker build -t pgvector-exporter .
#   docker run --rm -e DATABASE_URL=postgresql://user:pass@db:5432/rag -p 9188:9188 pgvector-exporter
#
# Build stage: dev dependencies to compile TypeScript, then pruned to production dependencies only.
# Node 24 LTS (supported to April 2028): Node 20 left support in April 2026. The code keeps running on
# Node >= 20 (package.json engines; the test machines run 20).
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# Runtime stage: Node, the compiled exporter, its SQL, production node_modules, and pg_dump/pg_restore
# for the backup job. pg_dump refuses servers of a newer major version, so the client major must be
# >= the server's: PG_CLIENT_MAJOR (default 17, the docker-compose server) comes from the PostgreSQL
# project's apt repository (PGDG); Debian 12 itself ships only 15.
FROM ${NODE_IMAGE} AS runtime
ARG PG_CLIENT_MAJOR=17
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates; \
    install -d /usr/share/postgresql-common/pgdg; \
    node -e "fetch('https://www.postgresql.org/media/keys/ACCC4CF8.asc').then(r => { if (!r.ok) throw new Error(r.status); return r.text(); }).then(t => require('fs').writeFileSync('/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc', t))"; \
    echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" > /etc/apt/sources.list.d/pgdg.list; \
    apt-get update; \
    apt-get install -y --no-install-recommends "postgresql-client-${PG_CLIENT_MAJOR}"; \
    rm -rf /var/lib/apt/lists/*; \
    pg_dump --version

# A system user without a login shell; the backup directory is a volume it owns.
RUN groupadd --system --gid 10001 exporter \
 && useradd --system --uid 10001 --gid exporter --home-dir /nonexistent --shell /usr/sbin/nologin exporter \
 && install -d -o exporter -g exporter /var/lib/pgvector-exporter/backups

WORKDIR /app
ENV NODE_ENV=production \
    PG_DUMP_PATH=/usr/lib/postgresql/${PG_CLIENT_MAJOR}/bin/pg_dump \
    PG_RESTORE_PATH=/usr/lib/postgresql/${PG_CLIENT_MAJOR}/bin/pg_restore
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY sql ./sql

LABEL org.opencontainers.image.title="pgvector-exporter" \
      org.opencontainers.image.description="Prometheus exporter and maintenance sidecar for PostgreSQL + pgvector RAG databases" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/pgvector-exporter/pgvector-exporter" \
      org.opencontainers.image.documentation="https://github.com/pgvector-exporter/pgvector-exporter#readme" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"

USER 10001:10001
VOLUME ["/var/lib/pgvector-exporter/backups"]
EXPOSE 9188

# /healthz answers while the process is alive, without credentials even when basic auth is on. The port
# follows WEB_LISTEN_ADDRESS; node's fetch needs no curl in the image. (With TLS in --web.config.file,
# use https and NODE_TLS_REJECT_UNAUTHORIZED=0 for a self-signed certificate.)
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "const a = process.env.WEB_LISTEN_ADDRESS || ':9188'; fetch('http://127.0.0.1:' + a.slice(a.lastIndexOf(':') + 1) + '/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# V8 flags, on the ENTRYPOINT because they are for the exporter alone (not the HEALTHCHECK's node -e) and
# --lite-mode is not allowed in NODE_OPTIONS: --lite-mode runs JavaScript in V8's interpreter only (no
# optimizing compilers, feedback allocated lazily): 5 MiB less of the node binary's code paged in and 4-5
# MiB less heap, while a scrape serves a body rendered at most once a second from the collectors' cache, so
# its latency did not move (docs/benchmarks.md, "Memory over an hour"; docs/operations.md, "Memory").
# --no-expose-wasm says what lite mode implies (without it node prints a warning at every start).
# --max-semi-space-size=1 (MiB) caps the young generation, which V8 otherwise grows with the allocation
# rate (100 custom collectors polling every second doubled it). bench/ reads these flags from this line and
# runs serve with them.
ENTRYPOINT ["node", "--lite-mode", "--no-expose-wasm", "--max-semi-space-size=1", "/app/dist/cli.js"]
CMD ["serve"]
