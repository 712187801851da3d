# stephub — plain go commands; `make help` lists the targets.

BIN      ?= bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
PYTHON   ?= python3
# The ports of `make cluster`'s nodes.
CLUSTER_PORTS ?= 8001 8002 8003
# The Python worker library's tests, against $(BIN)/stephub.
PYTEST   := STEPHUB_BIN=$(BIN)/stephub PYTHONDONTWRITEBYTECODE=1 $(PYTHON) -m unittest discover -s clients/python -t clients/python
# The pinned npm tools of the OpenAPI document (tools/openapi/package-lock.json).
OPENAPI_TOOLS := tools/openapi

.PHONY: help run build test test-python test-js js js-size openapi-check fuzz bench load cluster check-postgres check-node

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

run: build ## run the server on the embedded SQLite database with the mock pipeline
	$(BIN)/stephub serve

build: ## build bin/stephub
	go build -ldflags "$(LDFLAGS)" -o $(BIN)/stephub ./cmd/stephub

test: check-postgres check-node openapi-check build ## lint the OpenAPI document, go vet, every test with -race (product and bench/), the Python and JavaScript clients' tests, then each fuzz target for 10,000 inputs (needs PostgreSQL and Node.js, see the README)
	go vet ./...
	go test -race -count=1 ./...
	cd bench && go vet ./... && go test -race -count=1 ./...
	$(PYTEST)
	$(MAKE) test-js
	scripts/fuzz 10000x

test-python: build ## the Python worker library's tests (clients/python) against a real bin/stephub
	$(PYTEST)

# The JavaScript client (clients/js) installs only what its lockfile pins,
# with npm ci. Node.js and npm are Debian's packages nodejs and npm (.ci/run
# installs them when missing); any Node.js 18 or later does.
JS_CLIENT := clients/js

test-js: check-node build $(JS_CLIENT)/node_modules/.installed ## the JavaScript client: dist/ and the OpenAPI types up to date, then its tests against bin/stephub
	cd $(JS_CLIENT) && STEPHUB_BIN=$(abspath $(BIN))/stephub npm test

js: check-node $(JS_CLIENT)/node_modules/.installed ## regenerate the JavaScript client's OpenAPI types (from api/openapi.yaml) and dist/ (commit both)
	cd $(JS_CLIENT) && npm run types && npm run build

js-size: check-node $(JS_CLIENT)/node_modules/.installed ## the JavaScript client's size, bundled and minified, and gzipped
	cd $(JS_CLIENT) && npm run size

# npm ci again only when the lock file changes.
$(JS_CLIENT)/node_modules/.installed: $(JS_CLIENT)/package-lock.json
	cd $(JS_CLIENT) && npm ci --no-audit --no-fund
	touch $@

openapi-check: $(OPENAPI_TOOLS)/node_modules/.installed ## lint api/openapi.yaml with the pinned Redocly CLI, check web/docs/swagger-ui against its pinned package (npm ci first)
	cd $(OPENAPI_TOOLS) && REDOCLY_TELEMETRY=off node_modules/.bin/redocly lint --config redocly.yaml ../../api/openapi.yaml
	web/docs/vendor.sh --check

# npm ci again only when the lock file changes.
$(OPENAPI_TOOLS)/node_modules/.installed: $(OPENAPI_TOOLS)/package-lock.json
	cd $(OPENAPI_TOOLS) && npm ci --no-audit --no-fund
	touch $@

fuzz: ## run each fuzz target for FUZZTIME (default 1m)
	scripts/fuzz $(or $(FUZZTIME),1m)

bench: ## the hub's fan-out benchmarks
	go test -run '^$$' -bench . -benchmem ./hub/

load: build ## build bin/stephub-load, the loopback load generator of bench/ (see docs/performance.md)
	cd bench && go build -o $(abspath $(BIN))/stephub-load ./cmd/stephub-load

cluster: build ## nodes on CLUSTER_PORTS (:8001-:8003) sharing DATABASE_URL (a postgres:// URL); fails when a node does; Ctrl-C stops them
	scripts/cluster $(BIN)/stephub $(CLUSTER_PORTS)

check-node:
	@command -v node >/dev/null && command -v npm >/dev/null || { echo "Node.js and npm are missing: the JavaScript client's tests need them (apt-get install nodejs npm)"; exit 1; }

check-postgres: ## check that the tests' PostgreSQL answers: STEPHUB_TEST_POSTGRES when set, else 127.0.0.1:5432
	@pg_isready -q -d "$${STEPHUB_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}" || { \
		echo "PostgreSQL is not reachable at STEPHUB_TEST_POSTGRES, or 127.0.0.1:5432 when it is unset: the tests need it (see the README)"; exit 1; }
