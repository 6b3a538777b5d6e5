# flexcord — make targets. Run `make help` for the list.

GO            ?= go
export GOTOOLCHAIN := local
BIN           := $(CURDIR)/bin
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2
WORKFLOWCHECK := go.temporal.io/sdk/contrib/tools/workflowcheck@v0.6.0
KBEVAL        := ../shared/kbeval
VERSION       ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS       := -s -w -X main.version=$(VERSION)

.PHONY: help dev build build-prod test test-cluster test-short bench chaos lint eval-kb tools clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

dev: build ## run the whole system locally: embedded Temporal + UI, worker, ingress, emulators
	$(BIN)/flexcord dev --log-format text

build: ## build bin/flexcord (the development build: -tags dev adds dev, sandbox, temporal)
	$(GO) build -tags dev -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/flexcord ./cmd/flexcord

build-prod: ## build bin/flexcord-prod, the production binary (worker, ingress, gateway, operator commands)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/flexcord-prod ./cmd/flexcord

test: ## run every test (installs Chromium for the browser test when missing)
	./scripts/ensure-chromium.sh
	$(GO) test -tags dev -count=1 -timeout 30m ./...
	$(GO) test -count=1 -race -timeout 20m ./workflows/... ./internal/i18n/... ./internal/config/... ./kb/... ./sandbox/oapi/...

test-cluster: ## the cluster test: PostgreSQL-backed Temporal, every role a process, SIGKILLs mid-run
	./scripts/ensure-postgres.sh >/dev/null
	FLEXCORD_CLUSTER=1 $(GO) test -count=1 -timeout 30m -run '^TestCluster$$' -v ./e2e/cluster/

test-short: ## run the fast tests only (no embedded server, no browser)
	$(GO) test -tags dev -count=1 -short ./...

bench: ## benchmarks: KB query latency, then the relay's full path vs a direct relay (ends with the BENCH line)
	$(GO) test -run '^$$' -bench . ./kb/...
	@mkdir -p $(BIN) && rm -f $(BIN)/bench-relay.txt
	FLEXCORD_BENCH=1 FLEXCORD_BENCH_LABEL='$(VERSION)' FLEXCORD_BENCH_REPORT=$(BIN)/bench-relay.txt $(GO) test -count=1 -timeout 30m -run '^TestRelayBench$$' -v ./bench/
	@cat $(BIN)/bench-relay.txt

chaos: ## the chaos run: live chats both ways under worker stops, gateway gaps and provider faults
	FLEXCORD_CHAOS=1 $(GO) test -count=1 -timeout 30m -run '^TestChaos$$' -v ./e2e/

lint: tools ## go vet, staticcheck and workflowcheck
	$(GO) vet ./...
	$(GO) vet -tags dev ./...
	$(BIN)/staticcheck ./...
	$(BIN)/staticcheck -tags dev ./...
	$(BIN)/workflowcheck ./workflows/...

eval-kb: build ## knowledge-base retrieval metrics on every set in ../shared/kbeval
	@if [ ! -d $(KBEVAL) ]; then echo "no $(KBEVAL) here; nothing to evaluate"; exit 0; fi; \
	for set in $(KBEVAL)/*/; do \
	  echo "== $$(basename $$set)"; \
	  $(BIN)/flexcord kb eval --corpus $$set/corpus.jsonl --queries $$set/queries-dev.jsonl || exit 1; \
	done

tools: ## install the lint tools into bin/
	@mkdir -p $(BIN)
	@test -x $(BIN)/staticcheck || GOBIN=$(BIN) $(GO) install $(STATICCHECK)
	@test -x $(BIN)/workflowcheck || GOBIN=$(BIN) $(GO) install $(WORKFLOWCHECK)

clean: ## remove build output and the dev data directory
	rm -rf $(BIN) .flexcord
