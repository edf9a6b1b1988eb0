# rzgate: the front door. `make help` lists the targets.
#
# Every target provisions what it needs (toolchain, kernels, plugin) and each step is
# incremental: a second run rebuilds only what changed.

SHELL := /bin/bash
.DEFAULT_GOAL := help

OUT ?= $(CURDIR)/out
export OUT
RZGATE_CACHE ?= $(if $(XDG_CACHE_HOME),$(XDG_CACHE_HOME),$(HOME)/.cache)/rzgate
export RZGATE_CACHE

# Matrix selection (DESIGN.md contract): make run KERNELS=a,b TESTS=x,y TEMP=<°C> ADC=<v0,...,v7>
KERNELS ?=
TESTS ?=
TEMP ?=
ADC ?=
ON_ABORT ?=
LOOPS ?=
JOBS ?=
REPEAT ?=
SHARD ?=
COLD ?=
REPORTS ?=
REPORT ?= $(OUT)/matrix/report.json
VARIANT ?= upstream
TEST ?= boot
BASE ?= upstream
PATCH ?=
REPLAYS ?=

CARGO ?= cargo
RUNNER := $(CURDIR)/target/release/rzgate-runner
PLUGIN := $(CURDIR)/target/release/librzgate.so

comma := ,
# Where the runner finds what the other targets built, and where it writes (OUT=).
inputs = --initramfs $(OUT)/initramfs.cpio
# ADC values may be given with commas (as DESIGN.md writes them) or colons.
run_args = $(if $(KERNELS),--kernels $(KERNELS)) $(if $(TESTS),--tests $(TESTS)) \
	$(if $(TEMP),--temp=$(TEMP)) $(if $(ADC),--adc $(subst $(comma),:,$(ADC))) \
	$(if $(ON_ABORT),--on-abort $(ON_ABORT)) $(if $(LOOPS),--loops $(LOOPS)) \
	$(if $(JOBS),--jobs $(JOBS)) $(if $(REPEAT),--repeat $(REPEAT)) $(if $(SHARD),--shard $(SHARD)) \
	$(if $(COLD),--cold)
kernel_list = $(if $(KERNELS),$(subst $(comma), ,$(KERNELS)))

.PHONY: help toolchain kernels initramfs plugin build run test unit-test matrix boot \
	validate bench merge kcidb kcidb-venv lava replay fmt lint clean distclean

help:
	@echo "rzgate: RZ/G3S power-gating checks for Linux drivers under QEMU 11"
	@echo
	@echo "  make run        provision, build, run the default matrix, print the verdict table"
	@echo "                  (KERNELS=a,b TESTS=x,y TEMP=<degC> ADC=<v0,..,v7> ON_ABORT=continue|halt|serror LOOPS=N)"
	@echo "  make test       unit tests, then the matrix against its expectations (non-zero on mismatch)"
	@echo "  make validate   PATCH=FILE|DIR|MBOX [BASE=upstream|prefix] (or KERNEL_SRC=.. GIT_RANGE=a..b):"
	@echo "                  which patch adds or removes aborts? (./validate: the same, with exit status 0/1/2/3)"
	@echo "  make boot       VARIANT=<kernel> [TEST=<id>]: boot one kernel, stream its console"
	@echo "  make replay     the real bugs on record (guest-tests/replays.yaml): each aborts where the"
	@echo "                  board did, with its exception, and its twin is clean (out/replay/replay.md;"
	@echo "                  REPLAYS=FILE for another list)"
	@echo "  make bench      plugin overhead (CPU and wall time), boot cell and matrix time (out/bench/bench.json)"
	@echo "  make run SHARD=I/N   only shard I of N of the cells (one CI job each)"
	@echo "  make merge      REPORTS='a/report.json b/report.json ...': the shards as one report (out/matrix)"
	@echo "  make kcidb      [REPORT=out/matrix/report.json]: export KCIDB JSON beside it and validate it"
	@echo "  make lava       cells through LAVA's lava-run in the Debian 13 root, compared with the runner's own"
	@echo "                  (LAVA_CELLS=kernel:test,...; out/lava: jobs, logs, report)"
	@echo "  make toolchain  QEMU 11, cross gcc, dtc, busybox, linux-source (Debian 13 root)"
	@echo "  make kernels    build the kernel variants of guest-tests/variants (KERNEL_SRC=/path for your tree)"
	@echo "  make initramfs  pack the guest initramfs"
	@echo "  make plugin     build librzgate.so and the runner"
	@echo "  make lint       cargo fmt --check and clippy -D warnings"
	@echo "  make clean      remove out/ and target/ (the cache in $(RZGATE_CACHE) stays)"
	@echo "  make distclean  also remove the cache (toolchain root, kernel trees)"

toolchain:
	@bash ci/toolchain.sh

kernels: toolchain
	@bash ci/kernels.sh $(kernel_list)

# The initramfs carries the kernel's own DT selftest, so it needs the unpacked source.
initramfs: kernels
	@bash ci/initramfs.sh

plugin build:
	@$(CARGO) build --release --locked -p rzgate -p rzgate-runner

# Everything a matrix run needs.
prepare: toolchain kernels initramfs plugin

run: prepare
	@$(RUNNER) run $(inputs) --kernels-dir $(OUT)/kernels --out $(OUT)/matrix $(run_args)

unit-test:
	@$(CARGO) test --workspace --locked

# The matrix compared with guest-tests/matrix.yaml, plus the end-to-end checks of the
# product (guest-tests/e2e.sh: plugin arguments, validate, probes).
matrix: prepare
	@$(RUNNER) run $(inputs) --kernels-dir $(OUT)/kernels --out $(OUT)/matrix $(run_args)

# prepare first: the plugin's own QEMU tests (plugin/qemu/tests) need the toolchain's QEMU.
test: prepare kcidb-venv
	@$(CARGO) test --workspace --locked
	@$(RUNNER) run $(inputs) --kernels-dir $(OUT)/kernels --out $(OUT)/matrix $(run_args)
	@bash guest-tests/e2e.sh
	@$(RUNNER) replay $(inputs) --kernels-dir $(OUT)/kernels --out $(OUT)/replay
	@bash ci/lava.sh prove

boot: toolchain plugin
	@bash ci/kernels.sh $(VARIANT)
	@bash ci/initramfs.sh
	@$(RUNNER) boot $(inputs) --kernels-dir $(OUT)/kernels --out $(OUT)/boot --kernel $(VARIANT) --test $(TEST) $(if $(TEMP),--temp=$(TEMP)) \
		$(if $(ADC),--adc $(subst $(comma),:,$(ADC))) $(if $(ON_ABORT),--on-abort $(ON_ABORT))

# ./validate is the front door (its exit status is the contract: 0, 1, 2, 3); GNU make
# turns any failed recipe into its own status 2, so the status is said in words too.
validate:
	@status=0; ./validate PATCH="$(PATCH)" BASE="$(BASE)" $(if $(KERNEL_SRC),KERNEL_SRC="$(KERNEL_SRC)") \
		$(if $(GIT_RANGE),GIT_RANGE="$(GIT_RANGE)") $(if $(TESTS),TESTS="$(TESTS)") \
		$(if $(ON_ABORT),ON_ABORT="$(ON_ABORT)") || status=$$?; \
	if [ $$status -ne 0 ]; then echo "rzgate: validate exit status $$status (make reports any failure as 2: call ./validate for the status)" >&2; fi; \
	exit $$status

bench: prepare
	@bash ci/bench.sh

# The real bugs on record, each on its kernel with the fix reverted and on its twin.
replay: prepare
	@$(RUNNER) replay $(inputs) --kernels-dir $(OUT)/kernels --out $(OUT)/replay $(if $(JOBS),--jobs $(JOBS)) \
		$(if $(REPLAYS),--replays $(REPLAYS))

# Shard reports (make run SHARD=I/N OUT=...) into one report, as one run would write it.
merge: plugin
	@$(if $(REPORTS),,echo "make merge: REPORTS='shard1/report.json shard2/report.json ...' is required" >&2; exit 2)
	@$(RUNNER) merge $(REPORTS) --out $(OUT)/matrix

# KCIDB JSON of a report, checked with kcidb-io (ci/kcidb.sh makes its venv on first use).
kcidb: plugin
	@$(RUNNER) export-kcidb $(REPORT) --out $(dir $(REPORT))kcidb.json
	@bash ci/kcidb.sh validate $(dir $(REPORT))kcidb.json

kcidb-venv:
	@bash ci/kcidb.sh venv >/dev/null

# A few cells as LAVA jobs run by lava-run (installed into the Debian 13 root on first use),
# imported back and compared with the runner's own verdicts of the same cells.
lava: prepare
	@$(if $(LAVA_CELLS),LAVA_CELLS=$(LAVA_CELLS)) bash ci/lava.sh prove

fmt:
	@$(CARGO) fmt --all

lint:
	@$(CARGO) fmt --all -- --check
	@$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

clean:
	rm -rf $(OUT) target

distclean: clean
	@if mountpoint -q "$(RZGATE_CACHE)/root-trixie/proc" 2>/dev/null; then umount "$(RZGATE_CACHE)/root-trixie/proc"; fi
	rm -rf $(RZGATE_CACHE)
