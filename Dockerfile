# syntax=docker/dockerfile:1
# Multi-stage build: a static-enough release binary on a distroless, non-root base (no shell).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml clippy.toml ./
COPY src ./src
COPY policies ./policies
COPY examples ./examples
RUN cargo build --release --locked --bin cpgate

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/cpgate /usr/local/bin/cpgate
USER nonroot:nonroot
EXPOSE 2083 9483
ENTRYPOINT ["/usr/local/bin/cpgate"]
CMD ["serve", "--config", "/etc/cpgate/cpgate.toml"]
