# A thin index: each target is one line calling go or a script in .ci/.
FUNCTIONS := connect disconnect message
GOARCH ?= arm64

.PHONY: test test-go test-browser run lint build deps bench fuzz clean

## test: everything CI runs: lint, the Lambda builds, Go tests with -race (DynamoDB Local), the page in Chromium
test: test-go test-browser

## test-go: lint, the Lambda builds, unit, integration and end-to-end tests with -race
test-go: deps lint build
	go test -race -count=1 ./...

## test-browser: the page in headless Chromium against the local stack
test-browser: deps
	bash .ci/browser.sh

## run: the whole chat on this machine: DynamoDB Local, the WebSocket API emulator and the page
run: deps
	go build -o bin/localgw ./cmd/localgw && ./bin/localgw

## lint: gofmt, go vet, staticcheck
lint:
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt would change the files above"; exit 1; }
	go vet ./...
	go tool staticcheck ./...

## build: the three Lambda bootstraps, as sam build makes them (GOARCH=amd64 for this host)
build:
	@for f in $(FUNCTIONS); do \
	  CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH) go build -tags lambda.norpc -ldflags "-s -w" -o bin/$(GOARCH)/$$f/bootstrap ./functions/$$f || exit 1; \
	done

## deps: install what the tests need and the machine lacks (Java, Maven)
deps:
	@bash .ci/deps.sh

## bench: the fan-out benchmark that docs/benchmarks.md records
bench:
	go test -run '^$$' -bench . -benchtime 3x -benchmem ./internal/fanout

## fuzz: fuzz the inbound frame parser for a minute
fuzz:
	go test -run '^$$' -fuzz FuzzParseInbound -fuzztime 60s ./internal/chat

clean:
	rm -rf bin .aws-sam test/browser/node_modules test/browser/screenshots
