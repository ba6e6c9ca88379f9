# A thin index: each target is one line calling go or a script in .ci/.
FUNCTIONS := connect disconnect message fanout authorize
GOARCH ?= arm64
GOBUILD = CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH) go build -tags lambda.norpc -ldflags "-s -w"

.PHONY: test test-go test-browser test-deploy run lint build sam-build deploy deploy-web deps bench fuzz clean

## test: everything CI runs: lint, builds (sam build too), Go tests with -race (DynamoDB Local), the page in Chromium, deploy-web against a local S3
test: test-go test-browser test-deploy

## test-go: lint, the Lambda builds, unit, integration and end-to-end tests with -race
test-go: deps lint build
	go test -race -count=1 ./...

## test-browser: the page in headless Chromium against the local stack
test-browser: deps
	bash .ci/browser.sh

## test-deploy: cfn-lint, sam validate --lint, sam build (arm64 bootstraps) and make deploy-web against moto_server
test-deploy:
	bash .ci/deploy-check.sh

## run: the whole chat on this machine: DynamoDB Local, the WebSocket API emulator and the page (AUTH=jwt: with sign-in and a local identity provider; ARGS: more of bin/localgw's flags)
AUTH ?= none
run: deps
	go build -o bin/localgw ./cmd/localgw && ./bin/localgw -param Auth=$(AUTH) $(ARGS)

## lint: gofmt, go vet (for macOS too: the local stack runs there), staticcheck
lint:
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt would change the files above"; exit 1; }
	go vet ./...
	GOOS=darwin GOARCH=arm64 go vet ./...
	go tool staticcheck ./...

## build: the five Lambda bootstraps into bin/$(GOARCH)/ (GOARCH=amd64 for this host)
build:
	@for f in $(FUNCTIONS); do $(GOBUILD) -o bin/$(GOARCH)/$$f/bootstrap ./functions/$$f || exit 1; done

# sam build runs these (BuildMethod: makefile) with ARTIFACTS_DIR set;
# ConnectFunction builds ./functions/connect, and so on.
build-ConnectFunction build-DisconnectFunction build-MessageFunction build-FanoutFunction build-AuthorizeFunction:
	$(GOBUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/$(shell echo '$(@:build-%Function=%)' | tr A-Z a-z)

## sam-build: sam build, with aws-sam-cli from PyPI in .cache/sam if it is not installed
sam-build:
	bash .ci/sam.sh build

## deploy: sam build, then sam deploy (add ARGS=--guided the first time)
deploy: sam-build
	bash .ci/sam.sh deploy $(ARGS)

## deploy-web: publish web/ to the stack's bucket with config.js pointing at its API, and invalidate CloudFront
deploy-web:
	bash .ci/deploy-web.sh

## deps: install what the tests need and the machine lacks (Java, Maven)
deps:
	@bash .ci/deps.sh

## bench: the fan-out benchmark that docs/benchmarks.md records
bench:
	go test -run '^$$' -bench . -benchtime 3x -benchmem ./internal/fanout

## fuzz: fuzz the inbound frame parser and the name rules for a minute each
fuzz:
	go test -run '^$$' -fuzz FuzzParseInbound -fuzztime 60s ./internal/chat
	go test -run '^$$' -fuzz FuzzParseJoin -fuzztime 60s ./internal/chat

clean:
	rm -rf bin .aws-sam test/browser/node_modules test/browser/screenshots
