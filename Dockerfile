# syntax=docker/dockerfile:1
# ferry as a container: one static binary on a distroless base (CA
# certificates for iconik and S3, a non-root user, no shell, no curl).
#   docker build -t ferry .
#   docker run -p 8080:8080 -v ferry-data:/data -e FERRY_SECRET_KEY=... ferry
# compose.yaml runs two replicas on PostgreSQL and S3 behind Caddy.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Modules first: a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# CGO_ENABLED=0: the SQLite driver (modernc.org/sqlite) is pure Go, so the
# binary needs no libc and runs on a base image without one. deploy/deploy_test.go
# runs this same command and checks the result is static.
RUN CGO_ENABLED=0 go build -trimpath -ldflags=-s -o /out/ferry ./cmd/ferry
# The data directory must exist owned by the runtime user before the volume
# is mounted over it: Docker copies its ownership into a fresh named volume.
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ferry /usr/local/bin/ferry
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
# Database (SQLite), uploads and the secret key file live here; with
# PostgreSQL and an S3 store it still holds the key file unless
# FERRY_SECRET_KEY is set (and replicas must share one key).
VOLUME /data
ENV FERRY_DATA=/data \
    FERRY_ADDR=0.0.0.0:8080
EXPOSE 8080
# The image has no curl: the binary asks its own /healthz.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/ferry", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/ferry"]
CMD ["serve"]
