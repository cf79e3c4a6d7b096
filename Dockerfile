# compatbot as a container image: a multi-stage build (the Go toolchain
# stays in the first stage) onto Debian with what the builds and the
# publishers need at run time. See README, "Running compatbot for a CVMFS
# repository".
#
#   docker build -t compatbot .
#   docker run --rm compatbot version
#
# Builds mount overlays: run with --privileged (kernel overlayfs) or with
# /dev/fuse and CAP_SYS_ADMIN (fuse-overlayfs), and bubblewrap's sandbox
# needs user namespaces or root.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# -trimpath: no build paths in the binary; the VCS stamp (compatbot version)
# comes from .git when the build context has it.
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=auto -o /out/compatbot ./cmd/compatbot

FROM debian:bookworm-slim
# git: the repositories' checkouts and cache; fuse-overlayfs and fuse3: the
# overlay without kernel overlayfs; bubblewrap: the build sandbox;
# openssh-client: the cvmfs publisher on another host (publisher_host);
# xz-utils: Gentoo's compressed sources; ca-certificates: GitHub over TLS.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates git fuse-overlayfs fuse3 bubblewrap openssh-client xz-utils tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/compatbot --create-home --shell /usr/sbin/nologin compatbot
COPY --from=build /out/compatbot /usr/local/bin/compatbot
# data_dir (database, git cache, artifacts, build runs) and the config
# with its secrets are volumes: the image holds neither.
VOLUME ["/var/lib/compatbot", "/etc/compatbot"]
WORKDIR /var/lib/compatbot
EXPOSE 8080
# Probe GET /healthz (serving) and GET /readyz (database and disk) from the
# orchestrator; the image carries no HTTP client of its own.
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/compatbot"]
CMD ["serve", "--config", "/etc/compatbot/compatbot.yml"]
