# pkid: the two commands a newcomer needs are `make run` and `make test`.
GO       ?= go
BIN      := bin/pkid
DEV_DIR  := .pkid-dev
STATICCHECK_VERSION := v0.8.2

.PHONY: build run test test-short bench lint fmt clean

# -buildvcs=auto: the commit goes into the binary (pkid version) even where
# GOFLAGS says -buildvcs=false; outside a git checkout it is left out.
build:
	$(GO) build -buildvcs=auto -o $(BIN) ./cmd/pkid

# Creates a development CA in ./.pkid-dev on first run, prints the URL, the
# root fingerprint, an admin token and copy-paste examples, then serves.
run: build
	./scripts/dev-run.sh $(BIN) $(DEV_DIR)

# The whole suite, end-to-end checks included (.ci/run sets PKID_E2E=1 so a
# missing openssl/certbot/nginx fails instead of skipping). Concurrent
# packages run with -race. -count=1: cmd/pkid's tests run a pkid they build
# themselves, which Go's test cache cannot see, so a cached pass could be
# stale after a change elsewhere.
test:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	GOOS=windows GOARCH=amd64 $(GO) build -o /dev/null ./cmd/pkid  # the client commands build for Windows CI runners too
	$(GO) test -race -count=1 -timeout 15m ./...

test-short:
	$(GO) test ./...

bench: build
	./scripts/bench.sh

lint:
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(GO) vet ./...
	$$($(GO) env GOPATH)/bin/staticcheck ./...
	@test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
