# mismatch: model-based RL and objective mismatch, in Go.
#
#   make demo    the main job: a short PETS run and its report
#   make test    the test suite (installs system packages when missing)
#   make test-slurm  the cluster scripts on a one-node Slurm (root)
#   make bench   the speed benchmarks (with OPENBLAS_CORETYPE unset)

GO ?= go
BIN := bin/mismatch

.PHONY: all deps build demo test test-slurm bench vet clean

all: build

deps:
	@./scripts/deps.sh

build: deps
	$(GO) build -buildvcs=auto -o $(BIN) ./cmd/mismatch

# A short PETS run on the cartpole swing-up (about a minute on 2 cores) and
# its report: runs/demo/report.html.
demo: build
	./$(BIN) pets --preset fast --out runs/demo

# The whole suite runs twice: with OpenBLAS and with the pure-Go
# fallback, which must pass the same tests; then the cluster scripts run on
# a one-node Slurm started for the test (as root; skipped otherwise).
test:
	@./scripts/deps.sh test
	$(GO) vet ./...
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -tags purego ./...
	./deploy/slurm/test.sh

test-slurm:
	./deploy/slurm/test.sh

# OPENBLAS_CORETYPE=Haswell, set on some machines, halves sgemm speed on
# AVX-512 processors: benchmarks run without it.
# The planning benchmark logs the CPU, the BLAS kernel and the measured
# fp32 and bf16 peaks, and reports the control step as a multiple of the
# fp32 floor.
bench: deps
	env -u OPENBLAS_CORETYPE $(GO) test -run '^$$' -bench Peak -benchtime 3x ./internal/kernel/
	env -u OPENBLAS_CORETYPE $(GO) test -run '^$$' -bench . -benchtime 2s ./internal/kernel/ ./nn/ ./dynamics/ ./env/mujoco/
	env -u OPENBLAS_CORETYPE $(GO) test -v -run '^$$' -bench . -benchtime 3x ./planning/

vet:
	$(GO) vet ./...

clean:
	rm -rf bin
