# Latchkey in a container: docker build -t latchkey . && docker run -p 8080:8080 -v latchkey:/data latchkey
# See docs/deploy.md (TLS proxy, LATCHKEY_PUBLIC_URL, backups).

# Build: SQLite comes in through cgo (mattn/go-sqlite3), so a C toolchain.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath -ldflags="-s -w" -o /out/latchkey .

# Run: the same Debian release as the builder (same glibc), CA roots for
# SMTP over TLS and https webhooks, and a user without privileges.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin latchkey \
 && mkdir -p /data && chown latchkey:latchkey /data && chmod 0700 /data
COPY --from=build /out/latchkey /usr/local/bin/latchkey
USER latchkey:latchkey
WORKDIR /data
VOLUME ["/data"]
# In a container the listener must take connections from outside it.
ENV LATCHKEY_ADDR=:8080 \
    LATCHKEY_DB=/data/latchkey.db
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 CMD ["latchkey", "healthcheck"]
ENTRYPOINT ["latchkey"]
CMD ["serve"]
