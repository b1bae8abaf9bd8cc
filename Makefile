# Garrison — the two commands that matter are `make run` and `make test`.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
export GOTOOLCHAIN := local

VERSION ?= $(shell cat VERSION)
MODULE := github.com/garrison-chat/garrison
LDFLAGS := -s -w -X $(MODULE)/internal/buildinfo.version=$(VERSION)
GOFLAGS_BUILD := -trimpath -ldflags '$(LDFLAGS)'
STATICCHECK_VERSION := v0.8.2
RUN_DIR ?= .run

.PHONY: all build run ensure-postgres test test-short test-unit test-compat lint check load clean

all: build

## build: compile the binaries into bin/
build:
	go build $(GOFLAGS_BUILD) -o bin/garrison ./server/cmd/garrison
	go build $(GOFLAGS_BUILD) -o bin/garrison-pushproxy ./pushproxy/cmd/garrison-pushproxy
	go build $(GOFLAGS_BUILD) -o bin/garrisonctl ./installer/cmd/garrisonctl
	go build $(GOFLAGS_BUILD) -o bin/garrison-load ./test/load

## test-tools: what the tests drive a site with: bin/mmsite, the official Mattermost driver
## (built from test/compat's module, so that make build and make run never fetch it)
.PHONY: test-tools
test-tools:
	cd test/compat && go build -trimpath -o $(CURDIR)/bin/mmsite ./cmd/mmsite

## run: an all-in-one Garrison on http://127.0.0.1:8065 with a throwaway Postgres in $(RUN_DIR)
run: build ensure-postgres
	@exec ./bin/garrison allinone --dir $(RUN_DIR)

# ensure-postgres installs Debian's postgresql-15 when we are root and it is
# missing; otherwise it says what to install.
ensure-postgres:
	@if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then \
		if [ "$$(id -u)" -ne 0 ]; then \
			echo "PostgreSQL server binaries are missing. Install them with: sudo apt-get install postgresql-15" >&2; exit 1; \
		fi; \
		echo "Installing postgresql-15 with apt..." >&2; \
		DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql-15; \
	fi

## test: every test, with the race detector (CI=true turns missing prerequisites into failures)
test: test-unit test-compat

# The end-to-end packages (test/e2e, test/push, the push conformance run in
# server/internal/push) run make build's binaries instead of building their own.
BIN_ENV := GARRISON_BIN=$(CURDIR)/bin/garrison GARRISON_PUSHPROXY_BIN=$(CURDIR)/bin/garrison-pushproxy
# The bundle tests (test/bundle) use the bundle make bundle built, once per run.
# The installer's scenarios (test/install) also drive the site with the
# official Mattermost driver, built from test/compat's module as bin/mmsite.
BUNDLE_ENV = GARRISON_DIST=$(CURDIR)/dist GARRISONCTL_BIN=$(CURDIR)/bin/garrisonctl GARRISON_MINIO_BIN=$(MINIO_DIR)/minio MMSITE_BIN=$(CURDIR)/bin/mmsite

test-unit: build bundle test-tools
	$(BIN_ENV) $(BUNDLE_ENV) go test -race -count=1 -timeout 30m ./...

## test-install: the installer's scenarios alone: garrisonctl installs from the bundle onto booted
## Debian machines of the testbed (root, debootstrap, systemd-container, iproute2, iptables)
.PHONY: test-install
test-install: build bundle test-tools
	$(BUNDLE_ENV) go test -race -count=1 -timeout 30m -v ./test/install/

## test-compat: the official Mattermost Go driver against a running garrison
test-compat: build
	cd test/compat && $(BIN_ENV) go test -race -count=1 ./...

## test-e2e: the cluster scenarios alone, on the multi-node testbed with make build's garrison
## (root, iproute2, iptables, postgresql-15, nginx; figures in the log, and in $E2E_REPORT_DIR if set)
.PHONY: test-e2e
test-e2e: build
	GARRISON_BIN=$(CURDIR)/bin/garrison go test -race -count=1 -v ./test/e2e/

## test-push: push end to end alone: garrison, garrison-pushproxy and a headless firefox-esr
.PHONY: test-push
test-push: build
	$(BIN_ENV) go test -race -count=1 -v ./test/push/ ./pushproxy/... ./server/internal/push/...

## test-short: the fast subset for local iteration
test-short:
	go test -short ./...

## minio: build the pinned MinIO server the S3 tests run against (internal/miniotest), once:
## it is cached in ~/.cache/garrison/minio-<version>; a cold build takes about 7 minutes
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c
# Static, stripped and path-free: the bundle ships this binary, so it must
# not depend on the build host's libc, $$HOME or build ids.
MINIO_DIR := $(HOME)/.cache/garrison/minio-$(MINIO_VERSION)-static
.PHONY: minio
minio:
	@if [ -x "$(MINIO_DIR)/minio" ]; then \
		echo "minio $(MINIO_VERSION): $(MINIO_DIR)/minio"; \
	else \
		echo "Building minio $(MINIO_VERSION) into $(MINIO_DIR) (a few minutes the first time)..." >&2; \
		mkdir -p "$(MINIO_DIR)" && CGO_ENABLED=0 GOBIN="$(MINIO_DIR)" \
			go install -trimpath -ldflags '-s -w -buildid=' github.com/minio/minio@$(MINIO_VERSION); \
	fi

## lint: formatting, go vet and staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...
	cd test/compat && go vet ./...
	go run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	cd test/compat && go run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

## check: lint and test
check: lint test

## load: the fan-out and read load figures (see docs/performance.md)
load: build
	./bin/garrison-load $(LOADFLAGS)

clean:
	rm -rf bin dist

## bundle: the signed offline bundle in dist/ (tar, ISO, signing key; docs/bundle.md).
## Signs with GARRISON_SIGNING_KEY / GARRISON_APT_SIGNING_KEY, or development keys in .keys/
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null)
COMMIT ?= $(shell git describe --always --dirty --abbrev=40 2>/dev/null || echo unknown)
export GARRISON_KEYS_DIR ?= $(CURDIR)/.keys
.PHONY: bundle bundle-lock test-bundle
bundle: minio
	rm -f dist/garrison-*
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) go run ./packaging/cmd/mkbundle build \
		-minio $(MINIO_DIR)/minio -minio-version $(MINIO_VERSION) -commit $(COMMIT)

## test-bundle: the bundle tests alone (verify, tampering, reproducibility, offline install, units)
test-bundle: build bundle
	$(BIN_ENV) $(BUNDLE_ENV) go test -race -count=1 -v ./test/bundle/ ./packaging/...

## bundle-lock: recompute the pinned Debian closure (packaging/bookworm.lock) from today's apt lists
bundle-lock:
	apt-get update -q
	go run ./packaging/cmd/mkbundle lock

## bench-search: post search over a generated 1M-post corpus (minutes; not part of make test)
.PHONY: bench-search
bench-search:
	go build $(GOFLAGS_BUILD) -o bin/garrison ./server/cmd/garrison
	go run ./test/searchbench -garrison bin/garrison $(SEARCHBENCHFLAGS)

## bench-cluster: cross-node delivery latency and posts/s, 3 nodes x 500 sockets on the testbed
## (root; about a minute; not part of make test)
.PHONY: bench-cluster
bench-cluster: build
	GARRISON_BENCH=1 GARRISON_BIN=$(CURDIR)/bin/garrison go test -count=1 -v -run '^TestBenchCluster$$' -timeout 20m ./test/e2e/

## bench-files: put/get of a 10 MB file on the local and MinIO blob stores and
## upload/download through the HTTP API (MB/s; S3 needs `make minio`; not part of make test)
.PHONY: bench-files
bench-files:
	go test -run '^$$' -bench 10MB -benchtime 20x ./server/internal/blob ./server/internal/api
