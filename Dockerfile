# syntax=docker/dockerfile:1
# Multi-stage build: a static-enough release binary on a distroless, non-root base (no shell).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml clippy.toml ./
COPY src ./src
COPY policies ./policies
COPY examples ./examples
RUN cargo build --release --locked --bin cpgate \
    && mkdir -p /out/var/lib/cpgate

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/cpgate /usr/local/bin/cpgate
# The audit folder, owned by the run-time user so that a fresh named volume is writable.
COPY --from=build --chown=65532:65532 /out/var/lib/cpgate /var/lib/cpgate
USER nonroot:nonroot
EXPOSE 2083 9483
ENTRYPOINT ["/usr/local/bin/cpgate"]
CMD ["serve", "--config", "/etc/cpgate/cpgate.toml"]
