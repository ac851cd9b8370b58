# minivmm - GNU make build.
#
#   make            build build/minivmm
#   make demo       boot the demo guest (nested under QEMU/TCG when /dev/kvm is missing)
#   make check      unit tests, bounded fuzzing, host script tests, e2e guests
#                   (CHECK_PHASES="unit e2e" picks phases, E2E_CASES="blk_rw fs_ops" cases)
#   make e2e-slow   the e2e cases too slow for every check (nested three levels: minutes)
#   make SAN=1 ...  the same with ASan+UBSan (objects go to build/san)
#   make deps       install the Debian packages the build and the tests need

SAN ?= 0
V ?= 0

ifeq ($(SAN),1)
O ?= build/san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else
O ?= build
SANFLAGS :=
endif

CC ?= cc
# CFLAGS/LDFLAGS are the user's (make CFLAGS=-O0 works); what the build needs is added here.
CFLAGS ?= -O2 -g
ALL_CFLAGS = $(CFLAGS) -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -Isrc -MMD -MP -pthread \
	$(SANFLAGS)
ALL_LDFLAGS = $(LDFLAGS) -pthread $(SANFLAGS)
LDLIBS := -llzo2 -luring -lfdt -linih -llzma -lzstd -lz -lm
# Once the sandbox is on, threads are made by its spawner (src/sandbox/spawn.c).
LDLIBS += -Wl,--wrap=pthread_create
NPROC := $(shell nproc 2>/dev/null || echo 2)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lrt -lm)

ifeq ($(V),0)
Q := @
else
Q :=
endif

# Every .c under src/ except the entry point goes into a static library that the
# binary, the unit tests and the fuzzers all link.
LIB_SRCS := $(filter-out src/main.c,$(shell find src -name '*.c' | sort))
LIB_OBJS := $(LIB_SRCS:%.c=$(O)/%.o)
LIB := $(O)/libminivmm-core.a
# The public library (include/minivmm.h, docs/libminivmm.md): its client side only, built
# position-independent with everything but the minivmm_* API hidden, as a shared library
# (versioned symbols) and a static one (one object, internal symbols made local).
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PUB_SRCS := $(sort $(wildcard src/lib/*.c)) src/api_client.c src/util.c src/agent/agent_client.c \
	src/agent/agent_proto.c src/agent/agent_io.c src/agent/agent_connect.c
PUB_OBJS := $(PUB_SRCS:%.c=$(O)/pic/%.o)
SOVER := 0
PUB_SO := $(O)/lib/libminivmm.so.$(SOVER)
PUB_A := $(O)/lib/libminivmm.a
PUB_PC := $(O)/lib/minivmm.pc
EXAMPLES := $(O)/examples/sandbox-loop
BIN := $(O)/minivmm
# The guest agent (agent/, docs/agent.md): static, nothing but libc, with the protocol
# code it shares with the host client. SAN=1 builds it sanitized and dynamic instead
# (the sanitizers cannot link statically) for the unit tests that run it.
AGENT_SRCS := $(sort $(wildcard agent/*.c)) src/agent/agent_proto.c src/agent/agent_io.c
AGENT := $(O)/agent/minivmm-agent
# The test guest's copy: always static and unsanitized (it runs in the guest), also for SAN=1.
GUEST_AGENT := build/guest-agent/minivmm-agent

UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(O)/tests/%)

FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
# Fuzzers are always sanitized: one build for SAN=0 and SAN=1.
FUZZ_O ?= build/fuzz
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(FUZZ_O)/%)
FUZZ_SECONDS ?= 10
ROUNDS ?= 5
# make check's phases, in order, and the e2e cases to run (empty: all of them).
CHECK_PHASES ?= unit fuzz scripts e2e
E2E_CASES ?=

export MINIVMM := $(abspath $(BIN))
export MINIVMM_BUILD := $(abspath $(O))
# Host-decompressed kernels: one absolute path, the same inside the nested harness.
export MINIVMM_CACHE_DIR ?= $(abspath build/cache)

.PHONY: all install FORCE deps demo check unit unit-bins fuzz scripts e2e guest bench-agent bench-boot bench-qcow2 bench-blk-model \
	bench-blk-fio bench-snapshot bench-sharedfs bench-memimg bench-overcommit e2e-slow clean format
all: $(BIN) $(AGENT) $(PUB_SO) $(PUB_A) $(PUB_PC) $(EXAMPLES)

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  CC      $<"
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJS)
	@rm -f $@
	$(Q)ar rcs $@ $^

# The library's default minivmm binary is where `make install` puts it: rebuilt when
# BINDIR changes.
$(O)/pic/bindir: FORCE
	@mkdir -p $(dir $@)
	@echo '$(BINDIR)' | cmp -s - $@ || echo '$(BINDIR)' >$@

$(O)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  CC      $< (pic)"
	$(Q)$(CC) $(ALL_CFLAGS) -fPIC -fvisibility=hidden -c -o $@ $<

$(O)/pic/src/lib/vm.o: $(O)/pic/bindir
$(O)/pic/src/lib/vm.o: ALL_CFLAGS += -DMINIVMM_DEFAULT_BIN='"$(BINDIR)/minivmm"'

$(PUB_SO): $(PUB_OBJS) src/lib/libminivmm.map
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) -shared -Wl,-soname,libminivmm.so.$(SOVER) -Wl,--version-script=src/lib/libminivmm.map \
		-Wl,-z,defs -o $@ $(PUB_OBJS) $(ALL_LDFLAGS)
	$(Q)ln -sf libminivmm.so.$(SOVER) $(O)/lib/libminivmm.so

$(PUB_A): $(PUB_OBJS)
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  AR      $@"
	$(Q)ld -r -o $(O)/lib/libminivmm.o $(PUB_OBJS)
	$(Q)objcopy --localize-hidden $(O)/lib/libminivmm.o
	$(Q)rm -f $@ && ar rcs $@ $(O)/lib/libminivmm.o

$(PUB_PC): src/lib/minivmm.pc.in src/version.h FORCE
	@mkdir -p $(dir $@)
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
		-e "s|@VERSION@|$$(sed -n 's/^#define MINIVMM_VERSION[^"]*"\(.*\)"/\1/p' src/version.h)|" \
		$< >$@.tmp && (cmp -s $@.tmp $@ && rm -f $@.tmp || mv -f $@.tmp $@)

# The example programs: clients of the public library only.
$(O)/examples/%: examples/%.c include/minivmm.h $(PUB_A)
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) -std=gnu11 -Wall -Wextra -Werror $(SANFLAGS) -Iinclude -o $@ $< $(PUB_A) \
		$(ALL_LDFLAGS)

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR) \
		$(DESTDIR)$(LIBDIR)/minivmm
	install -m 755 $(BIN) $(DESTDIR)$(BINDIR)/minivmm
	install -m 755 $(AGENT) $(DESTDIR)$(LIBDIR)/minivmm/minivmm-agent
	install -m 644 include/minivmm.h $(DESTDIR)$(INCLUDEDIR)/minivmm.h
	install -m 644 $(PUB_A) $(DESTDIR)$(LIBDIR)/libminivmm.a
	install -m 755 $(PUB_SO) $(DESTDIR)$(LIBDIR)/libminivmm.so.$(SOVER)
	ln -sf libminivmm.so.$(SOVER) $(DESTDIR)$(LIBDIR)/libminivmm.so
	install -m 644 $(PUB_PC) $(DESTDIR)$(LIBDIR)/pkgconfig/minivmm.pc

FORCE:

$(BIN): $(O)/src/main.o $(LIB)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

# Test-only code (tests/lib: the fault-injecting file for qcow2, the split-ring test driver)
# stays out of the library.
TESTLIB_OBJS := $(patsubst %.c,$(O)/%.o,$(sort $(wildcard tests/lib/*.c)))

$(O)/tests/lib/%.o: tests/lib/%.c
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  CC      $<"
	$(Q)$(CC) $(ALL_CFLAGS) -Itests/lib -c -o $@ $<

$(O)/tests/%: tests/unit/%.c $(LIB) $(TESTLIB_OBJS)
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  CC      $<"
	$(Q)$(CC) $(ALL_CFLAGS) -Itests/unit -Itests/lib -o $@ $< $(TESTLIB_OBJS) $(LIB) \
		$(ALL_LDFLAGS) $(LDLIBS) $(CHECK_LIBS)

$(AGENT): $(AGENT_SRCS) $(wildcard agent/*.h) src/agent/agent_proto.h src/agent/agent_io.h src/util.h
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS) -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -Isrc $(SANFLAGS) \
		-o $@ $(AGENT_SRCS) $(LDFLAGS) $(if $(SANFLAGS),,-static)

$(GUEST_AGENT): $(AGENT_SRCS) $(wildcard agent/*.h) src/agent/agent_proto.h src/agent/agent_io.h \
		src/util.h
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) -O2 -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -Isrc -o $@ $(AGENT_SRCS) -static

# test_agent starts the agent.
$(O)/tests/test_agent: $(AGENT)

# libFuzzer targets are always built with clang, ASan and UBSan. The library is compiled
# once for all of them (coverage without libFuzzer's main), each target links against it.
FUZZ_CFLAGS := -std=gnu11 -g -O1 -D_GNU_SOURCE -DMINIVMM_FUZZ -Isrc -pthread -MMD -MP \
	-fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(FUZZ_O)/obj/%.o)
FUZZ_LIB := $(FUZZ_O)/libminivmm-fuzz.a

$(FUZZ_O)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  FUZZCC  $<"
	$(Q)clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_LIB): $(FUZZ_LIB_OBJS)
	@rm -f $@
	$(Q)ar rcs $@ $^

FUZZ_TESTLIB_OBJS := $(patsubst %.c,$(FUZZ_O)/obj/%.o,$(sort $(wildcard tests/lib/*.c)))

# Kept (not intermediate): each test binary links them.
.SECONDARY: $(TESTLIB_OBJS) $(FUZZ_TESTLIB_OBJS)

$(FUZZ_O)/%: tests/fuzz/%.c $(FUZZ_LIB) $(FUZZ_TESTLIB_OBJS)
	@mkdir -p $(dir $@)
	@echo "  FUZZLD  $@"
	$(Q)clang $(FUZZ_CFLAGS) -Itests/lib -fsanitize=fuzzer -o $@ $< $(FUZZ_TESTLIB_OBJS) \
		$(FUZZ_LIB) $(LDLIBS)

deps:
	$(Q)tests/deps.sh

# The unit tests built, not run (.ci/run compiles the SAN=1 tree while make check runs).
unit-bins: $(UNIT_BINS)

unit: $(UNIT_BINS)
	$(Q)tests/run-unit.sh $(UNIT_BINS)

fuzz: $(FUZZ_BINS)
	$(Q)FUZZ_O=$(FUZZ_O) tests/run-fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BINS)

# Host-side script tests (tests/scripts/*.sh): tools and engines that need no KVM.
scripts: $(BIN)
	$(Q)tests/run-scripts.sh

# The test guest; also its kernel decompressed once on the host: as an ELF
# vmlinux for the PVH tests and in the boot cache.
guest: $(BIN) $(GUEST_AGENT)
	$(Q)tests/guest/build-guest.sh build/guest $(GUEST_AGENT)
	$(Q)[ build/guest/vmlinux -nt build/guest/vmlinuz ] || \
		$(BIN) kernel extract build/guest/vmlinuz build/guest/vmlinux
	$(Q)$(BIN) kernel cache build/guest/vmlinuz

# End-to-end: real guests under minivmm, through the nested harness when needed.
# A case interrupted by a fault of the emulated L1 (not of minivmm) resumes in a new L1.
# The L1 gets 6G: memory_4g's guest must not put the L1 itself under memory pressure.
e2e: $(BIN) guest
	$(Q)rm -f $(O)/e2e.progress
	$(Q)TEST_E2E_PROGRESS=$(abspath $(O))/e2e.progress MINIVMM_L1_RETRIES=$${MINIVMM_L1_RETRIES:-3} \
		MINIVMM_L1_MEM=$${MINIVMM_L1_MEM:-6G} \
		MINIVMM_L1_TIMEOUT=$${MINIVMM_L1_TIMEOUT:-3000} tests/harness/in-vm.sh tests/e2e/run.sh $(E2E_CASES)

# Everything is compiled first, on all cores; the tests then run one after another.
check: deps
	$(Q)$(MAKE) --no-print-directory -j$(NPROC) all $(UNIT_BINS) \
		$(if $(filter fuzz,$(CHECK_PHASES)),$(FUZZ_BINS)) guest
	$(Q)MAKE="$(MAKE) --no-print-directory" SAN=$(SAN) tests/check.sh $(CHECK_PHASES)

# Benchmarks (not part of check): side by side with QEMU, reported as ratios.
bench-boot: $(BIN) guest
	$(Q)tests/harness/in-vm.sh bench/boot/run.sh $(ROUNDS)

bench-qcow2: $(BIN)
	$(Q)sh bench/qcow2/run.sh $(ROUNDS)

# virtio-blk device model without KVM: driver threads against the I/O threads.
$(O)/bench/blk_model: bench/blk-model/blk_model.c $(LIB)
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  CC      $<"
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(ALL_LDFLAGS) $(LDLIBS)

bench-blk-model: $(O)/bench/blk_model
	$(Q)bench/blk-model/run.sh $(O)/bench/blk_model $(ROUNDS)

# The snapshot memory image without a VM: save/restore speeds, lazy start latency.
$(O)/bench/memimg_bench: bench/memimg/memimg_bench.c $(LIB)
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  CC      $<"
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(ALL_LDFLAGS) $(LDLIBS)

bench-memimg: $(O)/bench/memimg_bench
	$(Q)$(O)/bench/memimg_bench speed $(O)/bench/memimg.scratch 512
	$(Q)$(O)/bench/memimg_bench lazy $(O)/bench/memimg.scratch 64 1024
	$(Q)rm -f $(O)/bench/memimg.scratch

# In-guest fio: per-vCPU queues vs one queue vs QEMU with an IOThread.
# The e2e cases too slow for every check (tests/e2e/*.sh SLOW_E2E; minutes each here).
E2E_SLOW_CASES := balloon_nested
e2e-slow: $(BIN) guest
	$(Q)$(MAKE) --no-print-directory e2e E2E_CASES="$(E2E_SLOW_CASES)" TEST_TIMEOUT=$${TEST_TIMEOUT:-450}

bench-overcommit: $(BIN) guest
	$(Q)bench/overcommit/run.sh $(ROUNDS)

# The host must be idle before the L1 starts (inside it, run.sh checks the L1 before each run).
bench-blk-fio: $(BIN) guest
	$(Q)bench/idle.sh $${MINIVMM_BENCH_BUSY:-20} 60
	$(Q)rm -f $(O)/bench-blk-fio.results
	$(Q)MINIVMM_BENCH_RESULTS=$(abspath $(O))/bench-blk-fio.results \
		MINIVMM_L1_RETRIES=$${MINIVMM_L1_RETRIES:-5} tests/harness/in-vm.sh bench/blk-fio/run.sh $(ROUNDS)

# Driving a guest: exec round trip, cp throughput, clone vs cold boot to the first output,
# minivmm's agent vs QEMU + qemu-guest-agent (installed here if missing).
bench-agent: all guest
	$(Q)command -v qemu-ga >/dev/null || { $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq \
		--no-install-recommends qemu-guest-agent && $(MAKE) --no-print-directory guest; }
	$(Q)tests/harness/in-vm.sh bench/agent/run.sh $(if $(filter command line,$(origin ROUNDS)),$(ROUNDS),50)

# Snapshots: minivmm LZO vs uncompressed vs QEMU migrate-to-file (one round unless ROUNDS=N).
bench-snapshot: $(BIN) guest
	$(Q)rm -f $(O)/bench-snapshot.results
	$(Q)MINIVMM_BENCH_RESULTS=$(abspath $(O))/bench-snapshot.results \
		MINIVMM_L1_RETRIES=$${MINIVMM_L1_RETRIES:-3} \
		bench/snapshot/run.sh $(if $(filter command line,$(origin ROUNDS)),$(ROUNDS),1)

# Shared filesystem: ext4 on virtio-blk vs virtio-fs with and without DAX vs QEMU 9p
# (one round unless ROUNDS=N).
bench-sharedfs: $(BIN) guest
	$(Q)rm -f $(O)/bench-sharedfs.results
	$(Q)MINIVMM_BENCH_RESULTS=$(abspath $(O))/bench-sharedfs.results \
		MINIVMM_L1_RETRIES=$${MINIVMM_L1_RETRIES:-3} MINIVMM_L1_TIMEOUT=$${MINIVMM_L1_TIMEOUT:-5400} \
		tests/harness/in-vm.sh bench/sharedfs/run.sh $(if $(filter command line,$(origin ROUNDS)),$(ROUNDS),1)

demo: deps
	$(Q)$(MAKE) --no-print-directory all guest
	$(Q)tests/harness/in-vm.sh $(BIN) run examples/demo.cfg

format:
	$(Q)clang-format -i $$(find src tests bench -name '*.[ch]')

clean:
	rm -rf build

-include $(LIB_OBJS:.o=.d) $(PUB_OBJS:.o=.d) $(TESTLIB_OBJS:.o=.d) $(UNIT_BINS:=.d) $(O)/src/main.d $(FUZZ_LIB_OBJS:.o=.d) $(FUZZ_BINS:=.d)
