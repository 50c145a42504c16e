# lockerd — build, demo, tests.
#   make demo   run a simulated locker with three ready orders (no Pi needed)
#   make test   install what the tests need, then vet, race-test and fuzz briefly

GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BIN     := bin
DEMO_API := 127.0.0.1:8480

# Fuzz targets: package and function. Each runs FUZZTIME in `make fuzz-short`.
FUZZ_TARGETS := ./locker:FuzzNormalizeCode ./locker/config:FuzzParse ./drivers/serialscan:FuzzSplitter ./sync/protocol:FuzzOpen
FUZZTIME ?= 5s

.PHONY: all build demo test test-deps vet unit fuzz-short fuzz clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

# The demo: lockerd on configs/demo.yaml (sim hardware), three ready orders,
# then lockerd runs in the foreground until Ctrl-C.
demo: build
	@rm -rf /tmp/lockerd-demo && mkdir -p /tmp/lockerd-demo
	@$(BIN)/lockerd -config configs/demo.yaml 2>/tmp/lockerd-demo/lockerd.log & pid=$$!; \
	trap 'kill $$pid 2>/dev/null; wait $$pid; echo; echo "demo stopped (log: /tmp/lockerd-demo/lockerd.log)"' INT TERM EXIT; \
	if ! $(BIN)/lockerctl -api $(DEMO_API) status --wait 10s >/dev/null; then \
		echo "lockerd did not start:"; cat /tmp/lockerd-demo/lockerd.log; exit 1; fi; \
	echo "lockerd demo locker is running (simulated hardware, API on $(DEMO_API))."; echo; \
	for spec in "S 9787020002207:Dream_of_the_Red_Chamber" "M 9787532736744:Fortress_Besieged" "L 9787544253994:One_Hundred_Years_of_Solitude"; do \
		set -- $$spec; $(BIN)/lockerctl -api $(DEMO_API) orders add --size $$1 --item $$2 || exit 1; echo; done; \
	echo "Try it in another terminal:"; \
	echo "  $(BIN)/lockerctl scan --scanner front CODE        # pick up: the door opens, closes by itself after 4 s"; \
	echo "  $(BIN)/lockerctl scan --scanner front WRONG1      # refused; five of these lock the scanner out"; \
	echo "  $(BIN)/lockerctl scan --scanner returns 9787020002207   # return a book"; \
	echo "  $(BIN)/lockerctl sim jam A02 / sim open B03 / sim bin-full   # inject faults"; \
	echo "  $(BIN)/lockerctl status ; $(BIN)/lockerctl events tail -f"; \
	echo; echo "Ctrl-C stops the demo."; \
	wait $$pid

# Installs what the tests need, or says how.
test-deps:
	@.ci/test-deps

vet:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

unit:
	$(GO) test -race -count=1 -timeout 10m ./...

fuzz-short:
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$fn ($$pkg) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; done

# Long fuzzing, for a developer machine: FUZZTIME=10m make fuzz
fuzz: FUZZTIME = 10m
fuzz: fuzz-short

test: test-deps vet unit fuzz-short

clean:
	rm -rf $(BIN)
