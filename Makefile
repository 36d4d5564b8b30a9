# Sinew — every target works from a clean checkout with only Go installed.
GO      ?= go
SHELL   := /bin/bash
TOOLS   := $(CURDIR)/.tools
BIN     := $(CURDIR)/bin
# Every module of the workspace: `go test ./...` at the root covers none of them.
MODULES := $(shell $(GO) list -m -f '{{.Dir}}')
PKGS    := $(addsuffix /...,$(MODULES))
# The race detector needs cgo (a C compiler); without one, tests run without it.
RACE    := $(shell [ "$$($(GO) env CGO_ENABLED)" = 1 ] && echo -race)

BUF_VERSION           := v1.75.0
PROTOC_GEN_GO_VERSION := v1.36.12
STATICCHECK_VERSION   := v0.8.2
GOVULNCHECK_VERSION   := v1.9.0
# The vulnerability database govulncheck reads (its -db flag).
GOVULNDB              ?= https://vuln.go.dev
# Seconds per fuzz target in fuzz-short (CI); longer runs: make fuzz-short FUZZTIME=10m.
FUZZTIME              ?= 2s
CHAOS_MESSAGES        ?= 50000
CHAOS_RATE            ?= 60

.PHONY: all build test test-short run proto proto-check lint bench bench-durable bench-pipeline bench-fsyncs tools clean fuzz-short vuln chaos chaos-short

all: build

build:
	$(GO) build $(PKGS)
	$(GO) build -o $(BIN)/sinew ./cmd/sinew
	@for s in services/*/cmd/*; do $(GO) build -o $(BIN)/$$(basename $$s) ./$$s || exit 1; done

test:
	$(GO) vet $(PKGS)
	$(GO) test $(RACE) -count=1 -timeout 45m $(PKGS)

test-short:
	$(GO) test -count=1 -short $(PKGS)

run: build
	$(BIN)/sinew up

$(TOOLS)/buf:
	GOBIN=$(TOOLS) GOWORK=off $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)

$(TOOLS)/protoc-gen-go:
	GOBIN=$(TOOLS) GOWORK=off $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

$(TOOLS)/staticcheck:
	GOBIN=$(TOOLS) GOWORK=off $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

$(TOOLS)/govulncheck:
	GOBIN=$(TOOLS) GOWORK=off $(GO) install golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION)

tools: $(TOOLS)/buf $(TOOLS)/protoc-gen-go $(TOOLS)/staticcheck $(TOOLS)/govulncheck

proto: $(TOOLS)/buf $(TOOLS)/protoc-gen-go
	cd proto && PATH=$(TOOLS):$$PATH buf lint && PATH=$(TOOLS):$$PATH buf generate

# Fails when the committed generated code differs from what `make proto` makes.
proto-check: proto
	@git diff --exit-code -- proto/ || { echo "generated protobuf code is stale: run make proto and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- proto/)" || { git status --porcelain -- proto/; echo "untracked generated files: run make proto and commit"; exit 1; }

lint: $(TOOLS)/staticcheck
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $(MODULES) | grep -v '\.pb\.go$$'); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@for m in $(MODULES); do (cd $$m && $(TOOLS)/staticcheck ./...) || exit 1; done

# Every fuzz target of every module for $(FUZZTIME) each (seed corpora
# included): a short run for CI; long runs are recorded in docs/security.md.
# scripts/fuzz-short.sh says how it tells Go 1.26's coordinator race from a finding.
fuzz-short:
	GO=$(GO) FUZZTIME=$(FUZZTIME) scripts/fuzz-short.sh

# govulncheck over every module against $(GOVULNDB). Where the database is
# unreachable it skips with a message (SINEW_REQUIRE_VULN=1 makes that fail).
vuln: $(TOOLS)/govulncheck
	@if ! curl -fsS --max-time 15 -o /dev/null $(GOVULNDB)/index/db.json 2>/dev/null; then \
	  if [ "$$SINEW_REQUIRE_VULN" = 1 ]; then echo "make vuln: $(GOVULNDB) unreachable and SINEW_REQUIRE_VULN=1"; exit 1; fi; \
	  echo "make vuln: SKIPPED: the vulnerability database $(GOVULNDB) is unreachable from this machine"; exit 0; fi; \
	for m in $(MODULES); do echo "govulncheck $$m"; (cd $$m && $(TOOLS)/govulncheck -db $(GOVULNDB) ./...) || exit 1; done

# The long chaos run (docs/reliability.md): $(CHAOS_MESSAGES) HL7 messages
# through three nats-server processes and per-service processes under faults.
chaos:
	cd test/e2e && SINEW_CHAOS_MESSAGES=$(CHAOS_MESSAGES) SINEW_CHAOS_RATE=$(CHAOS_RATE) SINEW_CHAOS_SENDERS=8 \
	  SINEW_CHAOS_REPORT=$(CURDIR)/chaos.out $(GO) test -count=1 -run '^TestChaos$$' -v -timeout 3h . | tee $(CURDIR)/chaos.log

# The short chaos run (3,000 messages, 18 faults), also part of make test
# (SINEW_CHAOS=0 skips it there).
chaos-short:
	cd test/e2e && $(GO) test -count=1 -run '^TestChaos$$' -v -timeout 30m .

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 6 $(PKGS) | tee bench.out

# MLLP commit-ACK from outside (../shared/tools/mllpload, a separate
# process; skipped with a message when absent): fsync per write with group
# commit, without it, and OS-buffered, interleaved, ROUNDS times; then the
# raw JetStream publish ceiling and the disk's fsync rate beside them.
bench-durable:
	scripts/bench-durable.sh | tee bench-durable.out

# The fsyncs and file-system operations one JetStream write and one message
# end to end cost, counted by strace (needs strace and mllpload).
bench-fsyncs:
	scripts/bench-fsyncs.sh | tee bench-fsyncs.out

# Every figure of issue 15 in one invocation, durable beside fast in each
# step (scripts/bench-pipeline.sh says what and how to size it).
bench-pipeline:
	scripts/bench-pipeline.sh | tee bench-pipeline.out

clean:
	rm -rf $(BIN) $(TOOLS) var bench.out bench-durable.out bench-fsyncs.out .images chaos.out chaos.log

# deploy/compose: FROM scratch images of static binaries (no registry is
# needed), demo TLS certificates and generated secrets.
COMPOSE_DIR := deploy/compose
# docker compose (v2 plugin) or docker-compose (v1), whichever is installed.
COMPOSE     ?= $(shell docker compose version >/dev/null 2>&1 && echo 'docker compose' || echo docker-compose)
IMAGES_DIR  := $(CURDIR)/.images
NATS_SERVER_VERSION := $(shell cd pkg && $(GO) list -m -f '{{.Version}}' github.com/nats-io/nats-server/v2)
SINEW_IMAGE_TAG ?= local
export SINEW_IMAGE_TAG
STATIC := CGO_ENABLED=0 $(GO) build -trimpath -tags timetzdata -ldflags=-s

.PHONY: images certs compose-env compose-up compose-down
images:
	@mkdir -p $(IMAGES_DIR)/bin $(IMAGES_DIR)/empty
	$(STATIC) -o $(IMAGES_DIR)/bin/sinew ./cmd/sinew
	@for s in services/*/cmd/*; do $(STATIC) -o $(IMAGES_DIR)/bin/$$(basename $$s) ./$$s || exit 1; done
	cd pkg && $(STATIC) -o $(IMAGES_DIR)/bin/nats-server github.com/nats-io/nats-server/v2
	cp /etc/ssl/certs/ca-certificates.crt $(IMAGES_DIR)/ca-certificates.crt
	docker build -q -f $(COMPOSE_DIR)/Dockerfile -t sinew:$(SINEW_IMAGE_TAG) .
	docker build -q -f $(COMPOSE_DIR)/nats.Dockerfile -t sinew-nats:$(SINEW_IMAGE_TAG) --label nats-server=$(NATS_SERVER_VERSION) .

certs:
	$(COMPOSE_DIR)/gen-certs.sh $(COMPOSE_DIR)/certs

compose-env:
	$(COMPOSE_DIR)/gen-env.sh $(COMPOSE_DIR)/.env

# The whole system in containers: three NATS nodes, every service, epicsim and fusionsim.
compose-up: images certs compose-env
	$(COMPOSE) -f $(COMPOSE_DIR)/docker-compose.yml up -d

compose-down:
	$(COMPOSE) -f $(COMPOSE_DIR)/docker-compose.yml down -v
