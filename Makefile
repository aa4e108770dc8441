# carefront: `make test` runs every check CI runs.
GO ?= go
GOFILES = $(shell find cmd internal bench tools -name '*.go' 2>/dev/null)

.PHONY: test fmt-check vet gotest e2e build run bench clean outbox-clean outbox-scan

# Every notification the tests deliver (Go packages and browser tests) is
# also written here, with the texts of the messages they send; the last
# step scans the notifications for PHI (tools/outboxscan).
OUTBOX ?= $(CURDIR)/.test-outbox

test: fmt-check vet outbox-clean gotest e2e outbox-scan

outbox-clean:
	rm -rf $(OUTBOX) && mkdir -p $(OUTBOX)

$(OUTBOX):
	mkdir -p $@

outbox-scan:
	$(GO) run ./tools/outboxscan $(OUTBOX)

fmt-check:
	@out="$$(gofmt -l $(GOFILES))"; if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# PostgreSQL runs too when CAREFRONT_TEST_POSTGRES holds a DSN (CI sets it).
# The upstream tests run an independent FHIR server (Medplum) under Node.js.
MEDPLUM = internal/clinical/upstream/testdata/medplum

gotest: $(MEDPLUM)/node_modules | $(OUTBOX)
	CAREFRONT_TEST_OUTBOX_DIR=$(OUTBOX) $(GO) test -race -count=1 ./...

$(MEDPLUM)/node_modules: $(MEDPLUM)/package-lock.json
	@command -v npm >/dev/null || { echo "gotest: Node.js and npm are required for the upstream FHIR tests"; exit 1; }
	cd $(MEDPLUM) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

build:
	$(GO) build -o bin/carefront ./cmd/carefront

# Browser tests against the real binary in Debian's Chromium.
e2e: build | $(OUTBOX)
	@command -v node >/dev/null || { echo "e2e: Node.js is required"; exit 1; }
	cd e2e && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && CAREFRONT_TEST_OUTBOX_DIR=$(OUTBOX) CAREFRONT_BIN=$(CURDIR)/bin/carefront npm test

run:
	$(GO) run ./cmd/carefront --demo

bench:
	$(GO) run ./bench/auditbench

clean:
	rm -rf bin
