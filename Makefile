# gmailoauth — run `make help` for the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO        ?= go
PORT      ?= 8080
PKGS      ?= ./...
TESTFLAGS ?= -race -count=1
EMULATOR  := .ci/firestore-emulator
PUBSUB    := .ci/pubsub-emulator
TF_DIR    := terraform
# Linters are installed by version from the Go module proxy into a cache
# outside the clone; bump a version here to reinstall.
TOOLS_DIR           ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/gmailoauth/bin
STATICCHECK_VERSION := v0.8.2
GOLANGCI_VERSION    := v2.15.0
STATICCHECK         := $(TOOLS_DIR)/staticcheck-$(STATICCHECK_VERSION)
GOLANGCI            := $(TOOLS_DIR)/golangci-lint-$(GOLANGCI_VERSION)

.PHONY: help
help: ## Show the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# The local runner is built, then run (not `go run`, which exits 1 on Ctrl-C
# whatever the program does), into .dev/, the checkout's ignored local state.
DEV_BIN := .dev/bin/dev

# dev-bin builds the runner, saying first when that takes a while: the first
# run downloads the modules (a few hundred MB) and compiles them, minutes on a
# cold cache with long silences.
define dev-bin
	@if ! GOPROXY=off GOFLAGS=-mod=readonly $(GO) list -deps ./functions/cmd/dev >/dev/null 2>&1; then \
	  echo "dev: first run: downloading the Go modules, then compiling them (a few minutes; quiet for long stretches)"; \
	elif [ ! -x $(DEV_BIN) ]; then \
	  echo "dev: compiling the local runner (up to two minutes the first time, with no output)"; \
	fi
	@$(GO) build -o $(DEV_BIN) ./functions/cmd/dev
endef

.PHONY: dev
dev: ## Run the three functions and the Google sandbox on localhost (PORT, default 8080; in-memory store)
	$(dev-bin)
	@PORT=$(PORT) $(DEV_BIN)

.PHONY: dev-firestore
dev-firestore: ## Like dev, on the Firestore and Pub/Sub emulators (started and stopped here)
	$(dev-bin)
	@set -euo pipefail; trap '$(EMULATOR) stop; $(PUBSUB) stop' EXIT; \
	out=$$($(EMULATOR) start); host=$${out##*=}; \
	out=$$($(PUBSUB) start); pshost=$${out##*=}; \
	FIRESTORE_EMULATOR_HOST=$$host PUBSUB_EMULATOR_HOST=$$pshost GOOGLE_CLOUD_PROJECT=demo-dev STORE=firestore PORT=$(PORT) $(DEV_BIN)

.PHONY: test
test: ## Run every test; starts the Firestore and Pub/Sub emulators for them and stops them after
	@set -euo pipefail; trap '$(EMULATOR) stop; $(PUBSUB) stop' EXIT; \
	out=$$($(EMULATOR) start); host=$${out##*=}; \
	out=$$($(PUBSUB) start); pshost=$${out##*=}; \
	echo "Firestore emulator on $$host, Pub/Sub emulator on $$pshost"; \
	FIRESTORE_EMULATOR_HOST=$$host PUBSUB_EMULATOR_HOST=$$pshost $(GO) test $(TESTFLAGS) $(PKGS)

.PHONY: test-short
test-short: ## Run the tests that need no emulator or browser
	$(GO) test -count=1 -short $(PKGS)

FUZZTIME ?= 10s
FUZZ_TARGETS := internal/session:FuzzSessionVerify internal/oauthflow:FuzzCheckReturnTo \
	internal/mailbox:FuzzParseListRequest internal/mailbox:FuzzOpenPageToken internal/logging:FuzzScrub \
	internal/keyset:FuzzKeysetParse internal/app:FuzzCallback

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME (default 10s) each
	@set -eo pipefail; for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; fn=$${t##*:}; echo "fuzz: $$fn ($$pkg, $(FUZZTIME))"; \
	  for try in 1 2; do \
	    out=$$(mktemp); \
	    if $(GO) test -run='^$$' -fuzz="^$$fn$$" -fuzztime=$(FUZZTIME) ./$$pkg/ >$$out 2>&1; then tail -n 2 $$out; rm -f $$out; break; fi; \
	    cat $$out; rm -f $$out; \
	    if [ -n "$$(git status --porcelain -- $$pkg/testdata/fuzz/$$fn)" ]; then \
	      echo "fuzz: $$fn found a failing input: $$pkg/testdata/fuzz/$$fn/ (go test -run=$$fn ./$$pkg/ replays it)"; exit 1; fi; \
	    if [ $$try = 2 ]; then echo "fuzz: $$fn failed twice without a failing input"; exit 1; fi; \
	    echo "fuzz: $$fn stopped without a failing input (the fuzzing engine itself); trying once more"; \
	  done; \
	done

.PHONY: load
load: ## Load test: 200 users connect, then 1,000 concurrent ListMessages; prints p50/p99 and peak memory
	@set -euo pipefail; out=$$($(EMULATOR) start); host=$${out##*=}; \
	trap '$(EMULATOR) stop' EXIT; \
	FIRESTORE_EMULATOR_HOST=$$host $(GO) test -run '^TestLoad$$' -count=1 -v ./internal/local/devserver/ | grep -v '^    load_test.go'

.PHONY: demo-test
demo-test: ## Drive the demo page in headless Chromium; SCREENSHOT_DIR=dir keeps the screenshots (desktop, phone, misconfigured)
	CI=$${CI:-true} $(GO) test -count=1 -run TestDemoInBrowser -v ./internal/local/demo

.PHONY: build
build: ## Compile and vet everything
	$(GO) build ./...
	$(GO) vet ./...

.PHONY: lint
lint: $(STATICCHECK) $(GOLANGCI) ## go vet, staticcheck and golangci-lint (pinned versions, installed on first use)
	$(GO) vet ./...
	$(STATICCHECK) ./...
	$(GOLANGCI) run ./...

$(STATICCHECK):
	@mkdir -p $(TOOLS_DIR)
	GOBIN=$(TOOLS_DIR) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(TOOLS_DIR)/staticcheck $@

$(GOLANGCI):
	@mkdir -p $(TOOLS_DIR)
	GOBIN=$(TOOLS_DIR) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION)
	mv $(TOOLS_DIR)/golangci-lint $@

.PHONY: bench
bench: ## Print the benchmark tables (sync, hot path, push); figures, not assertions
	@set -euo pipefail; trap '$(EMULATOR) stop; $(PUBSUB) stop' EXIT; \
	out=$$($(EMULATOR) start); host=$${out##*=}; \
	out=$$($(PUBSUB) start); pshost=$${out##*=}; \
	FIRESTORE_EMULATOR_HOST=$$host PUBSUB_EMULATOR_HOST=$$pshost .ci/bench

.PHONY: keyset
keyset: ## Print a new app keyset JSON (pipe it to gcloud secrets versions add)
	@$(GO) run ./functions/cmd/keyset

TF ?= $(shell command -v terraform 2>/dev/null || command -v tofu 2>/dev/null || echo terraform)

.PHONY: tf-check
tf-check: ## Offline Terraform checks with real OpenTofu: fmt, validate, tofu test (mock providers), zip lists vs Go test
	bash .ci/tf-check

.PHONY: tf-init
tf-init: ## terraform init in terraform/ (real providers from the registry)
	$(TF) -chdir=$(TF_DIR) init

.PHONY: tf-plan
tf-plan: ## Show what tf-apply would change (settings in terraform/terraform.tfvars)
	$(TF) -chdir=$(TF_DIR) plan

.PHONY: tf-apply
tf-apply: ## Deploy to Google Cloud (see terraform/README.md)
	$(TF) -chdir=$(TF_DIR) apply

.PHONY: tf-destroy
tf-destroy: ## Tear down (Firestore data is kept unless firestore_deletion_policy=DELETE)
	$(TF) -chdir=$(TF_DIR) destroy
