# The project's one test command is `make test`; .ci/run calls it.
# Tools are pinned and installed into .tools/bin on first use, so a fresh
# machine needs only Go, moto_server and the aws CLI (see README).

GO                 ?= go
TOOLS              := $(CURDIR)/.tools/bin
STATICCHECK        := $(TOOLS)/staticcheck
STATICCHECK_VERSION := v0.8.2
TERRAFORM_VERSION  := v1.5.7
# Use a terraform already on PATH (fmt output is stable across 1.5+);
# otherwise build the pinned one from the Go module proxy.
TERRAFORM          ?= $(shell command -v terraform 2>/dev/null || echo $(TOOLS)/terraform)
GO_FILES           = $(shell git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.tools/*')

DEVVAULT           := $(TOOLS)/devvault

.PHONY: test fmt-check vet lint unit tf-fmt tools demo bench devvault browser

test: fmt-check vet lint tf-fmt unit

fmt-check:
	@out="$$(gofmt -l $(GO_FILES))"; if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

lint: $(STATICCHECK)
	$(STATICCHECK) ./...

unit: devvault browser
	$(GO) test -race -count=1 -timeout 30m ./...

tf-fmt: $(TERRAFORM)
	$(TERRAFORM) fmt -check -recursive -diff terraform

tools: $(STATICCHECK) $(TERRAFORM) devvault

# The in-process Vault v1.14.1 test server, its own Go module so that the
# product's go.mod stays lean. Built once (cold: ~3 minutes, ~2.4 GB of
# module cache); go's build cache makes later builds quick. The Vault
# tests use this binary and fail, never skip, when it cannot be built.
# The dashboard's browser tests drive Debian's chromium: install it when it
# is missing (root, as on CI and the dev machines); the tests fail, never
# skip, without it.
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update && apt-get install -y chromium)

devvault:
	cd internal/testutil/devvault && GOWORK=off $(GO) build -o $(DEVVAULT) .

$(STATICCHECK):
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

$(TOOLS)/terraform:
	GOBIN=$(TOOLS) $(GO) install github.com/hashicorp/terraform@$(TERRAFORM_VERSION)

demo:
	$(GO) run ./cmd/lakirotator serve --demo
