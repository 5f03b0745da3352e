# The app image for server mode (docker-compose.yml): one image, the role is chosen by
# the command (`bun lib/main.ts --role ingest|analytics|jobs`, `bun migrations/cli.ts`).

# Dependencies come from package-lock.json, the lockfile of record, so they are installed
# with npm in a Node image of the same Debian release as the Bun image below.
# chdb is a runtime dependency even in server mode: lib/clickhouse.ts imports
# chdb/connection, which loads its native library (glibc, hence the Debian images).
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# npm install, not npm ci: see lib/bootstrap.mjs (chdb's optional per-platform packages).
RUN npm install --omit=dev --no-audit --no-fund

# The Bun package.json pins (the one the benchmarks measured): see test/bench/HISTORY.md.
FROM oven/bun:1.4.5-debian
WORKDIR /app
# Malloc=1: JavaScriptCore's allocator hands its allocations to the system malloc, as
# `npm start` does (SYSTEM_MALLOC in lib/bootstrap.mjs and the README's Settings). Bun reads
# it at start whatever its value; to run without it: `env -u Malloc bun lib/main.ts`.
# MIMALLOC_*: Bun's allocator keeps freed pages 15 s and leaves the holes of pages in use,
# as `npm start` does (lib/bootstrap.mjs and the README's Settings).
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    DATA_DIR=/app/data \
    Malloc=1 \
    MIMALLOC_PURGE_DELAY=15000 \
    MIMALLOC_PURGE_HOLES=0
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json bunfig.toml tsconfig.json ./
COPY lib ./lib
COPY migrations ./migrations
COPY ingest ./ingest
COPY analytics ./analytics
COPY jobs ./jobs
# main.ts writes DATA_DIR/run/server.json; nothing else lives there in server mode.
RUN mkdir -p /app/data && chown bun:bun /app/data
# The image's unprivileged user (uid 1000); the source stays owned by root, read-only to it.
USER bun
EXPOSE 8080
CMD ["bun", "lib/main.ts"]
