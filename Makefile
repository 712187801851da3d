# stephub — plain go commands; `make help` lists the targets.

BIN      ?= bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
PYTHON   ?= python3
# The ports of `make cluster`'s nodes.
CLUSTER_PORTS ?= 8001 8002 8003
# The Python worker library's tests, against $(BIN)/stephub.
PYTEST   := STEPHUB_BIN=$(BIN)/stephub PYTHONDONTWRITEBYTECODE=1 $(PYTHON) -m unittest discover -s clients/python -t clients/python

.PHONY: help run build test test-python fuzz bench load cluster check-postgres

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

run: build ## run the server on the embedded SQLite database with the mock pipeline
	$(BIN)/stephub serve

build: ## build bin/stephub
	go build -ldflags "$(LDFLAGS)" -o $(BIN)/stephub ./cmd/stephub

test: check-postgres build ## go vet, every test with -race (product and bench/), the Python worker library's tests, then each fuzz target for 10,000 inputs (needs PostgreSQL, see the README)
	go vet ./...
	go test -race -count=1 ./...
	cd bench && go vet ./... && go test -race -count=1 ./...
	$(PYTEST)
	scripts/fuzz 10000x

test-python: build ## the Python worker library's tests (clients/python) against a real bin/stephub
	$(PYTEST)

fuzz: ## run each fuzz target for FUZZTIME (default 1m)
	scripts/fuzz $(or $(FUZZTIME),1m)

bench: ## the hub's fan-out benchmarks
	go test -run '^$$' -bench . -benchmem ./hub/

load: build ## build bin/stephub-load, the loopback load generator of bench/ (see docs/performance.md)
	cd bench && go build -o $(abspath $(BIN))/stephub-load ./cmd/stephub-load

cluster: build ## nodes on CLUSTER_PORTS (:8001-:8003) sharing DATABASE_URL (a postgres:// URL); fails when a node does; Ctrl-C stops them
	scripts/cluster $(BIN)/stephub $(CLUSTER_PORTS)

check-postgres: ## check that the tests' PostgreSQL answers: STEPHUB_TEST_POSTGRES when set, else 127.0.0.1:5432
	@pg_isready -q -d "$${STEPHUB_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}" || { \
		echo "PostgreSQL is not reachable at STEPHUB_TEST_POSTGRES, or 127.0.0.1:5432 when it is unset: the tests need it (see the README)"; exit 1; }
