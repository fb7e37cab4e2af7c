# hrto's container image: multi-stage; the final stage holds Node.js and hrto's bundle (dist/), no
# node_modules and no dev dependencies. Non-root, no shell needed at run time, and the controller
# itself as PID 1 (it handles SIGTERM and SIGINT: finish in-flight work, release the leader lease,
# exit 0). Runs with a read-only root filesystem.
# The bundle is plain JavaScript: built once on the build machine's platform for every target
# platform of a multi-arch release (linux/amd64, linux/arm64), not under emulation.
FROM --platform=$BUILDPLATFORM node:24-alpine AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY hack/bundle.mjs ./hack/
COPY src ./src
RUN npm run build

FROM node:24-alpine
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/dist ./dist
# The image's unprivileged "node" user, by number so runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 8080 8081
# A young generation of at most 2 MiB per semi-space: by default V8 lets it grow several-fold with a burst of
# watch events and keeps it, which cost 15-20 MiB of RSS under load for no speed measured
# (npm run bench runs hrto with these same flags, read from this line). Every full GC compacts the old
# space: V8 otherwise compacts only its emptiest pages and keeps the half-empty rest, so under steady
# load its old space held twice what was live and RSS crept for an hour (the compaction of a 10-20 MiB
# heap, every 20 s or so, costs no CPU that could be measured). The old-space limit is set by the
# Deployment (NODE_OPTIONS), next to the memory limit it must stay under.
ENTRYPOINT ["node", "--max-semi-space-size=2", "--compact-on-every-full-gc", "dist/hrto.mjs"]
