# stephub in a container: see docs/deploying.md. CI builds the binary as
# below and runs it (TestDockerfileBuild), but not the image: its machines
# have no Docker engine.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# modernc.org/sqlite is pure Go, so the binary needs no C library.
RUN CGO_ENABLED=0 go build -ldflags "-s -w -X main.version=$VERSION" -o /out/stephub ./cmd/stephub
RUN mkdir /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/stephub /usr/local/bin/stephub
# The SQLite database's folder, owned by the image's non-root user so that
# a new volume mounted there is too.
COPY --from=build --chown=nonroot:nonroot /out/data /data
ENV ADDR=:8000 DATABASE_URL=sqlite:///data/stephub.db
VOLUME /data
EXPOSE 8000
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/stephub"]
CMD ["serve"]
