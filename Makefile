# esmeta build. `make` builds build/libesmeta.a and build/esmeta; `make test` runs the tests;
# `make test-asan` runs them again under AddressSanitizer + UndefinedBehaviorSanitizer;
# `make check` runs both and sums them up. Dependencies come from pkg-config.

BUILD   ?= build
SAN     ?= 0
CC      ?= gcc
VERSION := 0.1.0

# OpenBLAS's pthreads build, pinned to one thread at start-up (esm_blas_single_thread): esmeta
# owns all threading (one member per thread in ES, fixed image partitions in backprop and eval),
# so no result depends on how a BLAS would split its work. Not the serial build: Debian's is not
# safe to call from several threads at once (wrong results, measured), and not the OpenMP build,
# which ties its threads to OpenMP's. Debian installs the builds side by side; point pkg-config
# and the run-time path at the pthreads one (scripts/install-deps installs it).
BLAS_DIR   := $(firstword $(wildcard /usr/lib/*/openblas-pthread/libopenblas.so))
BLAS_DIR   := $(patsubst %/,%,$(dir $(BLAS_DIR)))
ifneq ($(BLAS_DIR),)
BLAS_CFLAGS := $(shell PKG_CONFIG_PATH=$(BLAS_DIR)/pkgconfig pkg-config --cflags openblas)
BLAS_LIBS   := -L$(BLAS_DIR) -Wl,-rpath,$(BLAS_DIR) -lopenblas
BLAS_NAME   := openblas-pthread
else
BLAS_CFLAGS := $(shell pkg-config --cflags openblas 2>/dev/null)
BLAS_LIBS   := $(shell pkg-config --libs openblas 2>/dev/null)
BLAS_NAME   := openblas
endif
PKGS       := libpng libjpeg libzip zlib
PKG_CFLAGS := $(BLAS_CFLAGS) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(BLAS_LIBS) $(shell pkg-config --libs $(PKGS) 2>/dev/null)

# MPI is optional: dist/ compiles against it when OpenMPI's pkg-config file is present.
HAVE_MPI   := $(if $(wildcard src/dist/*.c),$(shell pkg-config --exists ompi-c 2>/dev/null && echo 1 || echo 0),0)
ifeq ($(HAVE_MPI),1)
MPI_CFLAGS := $(shell pkg-config --cflags ompi-c)
MPI_LIBS   := $(shell pkg-config --libs ompi-c)
endif

# CUDA is optional: src/*/*.cu are compiled by nvcc when nvcc is on PATH (or in /usr/local/cuda),
# and the GPU population evaluator (--device cuda) is linked in; `make NVCC=` builds without it.
# SASS for Ampere (sm_80, sm_86), Ada (sm_89) and Hopper (sm_90, H100/H200), which cannot run
# PTX newer than their own, plus compute_90 PTX, which the driver JIT-compiles on newer GPUs.
ifeq ($(origin NVCC),undefined)
NVCC       := $(shell command -v nvcc 2>/dev/null || { test -x /usr/local/cuda/bin/nvcc && echo /usr/local/cuda/bin/nvcc; })
endif
HAVE_CUDA  := $(if $(strip $(NVCC)),1,0)
CUDA_SRC   := $(sort $(wildcard src/*/*.cu))
ifeq ($(HAVE_CUDA),1)
CUDA_HOME  := $(patsubst %/bin/nvcc,%,$(realpath $(NVCC)))
CUDA_LIBDIR := $(firstword $(wildcard $(CUDA_HOME)/lib64 $(CUDA_HOME)/targets/x86_64-linux/lib) $(CUDA_HOME)/lib64)
CUDA_ARCH  ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_86,code=sm_86 \
              -gencode arch=compute_89,code=sm_89 -gencode arch=compute_90,code=sm_90 \
              -gencode arch=compute_90,code=compute_90
# nvcc's kernel-launch stubs are C++ (static guards, personality): link libstdc++ too.
CUDA_LIBS  := -L$(CUDA_LIBDIR) -Wl,-rpath,$(CUDA_LIBDIR) -lcublas -lcudart -lstdc++
CUDA_OBJ   := $(CUDA_SRC:%.cu=$(BUILD)/obj/%.o)
CUDA_PIC   := $(CUDA_SRC:%.cu=$(BUILD)/pic/%.o)
endif

OPT      := -O2
LDFLAGS  :=
ifeq ($(SAN),1)
OPT      := -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS  := -fsanitize=address,undefined
endif
# The library as the fuzzers link it (clang only): coverage-instrumented, with the sanitizers.
ifeq ($(SAN),fuzz)
OPT      := -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS  := -fsanitize=address,undefined
endif

CPPFLAGS := -Iinclude -Isrc -D_POSIX_C_SOURCE=200809L -DESM_VERSION='"$(VERSION)"' \
            -DESM_HAVE_MPI=$(HAVE_MPI) -DESM_HAVE_CUDA=$(HAVE_CUDA) -DESM_BLAS_VENDOR='"$(BLAS_NAME)"'
CFLAGS   := -std=c11 -g $(OPT) -march=x86-64-v2 -ffp-contract=off -fopenmp -Wall -Wextra -Werror $(PKG_CFLAGS)
LDLIBS   := $(PKG_LIBS) $(MPI_LIBS) $(CUDA_LIBS) -fopenmp -lm
# Device code never uses fast math: the Philox noise must match the host's bits (see src/popeval/cuda.cu).
# Host code of the .cu files gets gcc's warnings as errors like the C files. nvcc does not take
# -fsanitize, so in the sanitizer build the .cu host code is the one part not instrumented.
NVCCFLAGS := -std=c++17 -O2 -g $(CUDA_ARCH) -Xcompiler -Wall,-Wextra,-Werror -Werror all-warnings

LIB_SRC  := $(sort $(wildcard src/*/*.c))
CLI_SRC  := $(sort $(wildcard cli/*.c))
TEST_SRC := $(sort $(wildcard tests/*.c))
# The fuzz harnesses are built into the tests too, which replay their corpus (fuzz/README.md).
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
BENCH_SRC := $(sort $(wildcard bench/*.c))
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/%)

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
# The tests link the CLI's code (all but its main) to call it in-process: option parsing, and
# `esmeta train` under the write-fault seam. The CLI fuzz harness links its option parsing.
CLI_ARGS_SRC := cli/options.c cli/args.c
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/obj/%.o) $(FUZZ_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/test_registry.o \
            $(filter-out $(BUILD)/obj/cli/main.o,$(CLI_SRC:%.c=$(BUILD)/obj/%.o))

LIB := $(BUILD)/libesmeta.a
BIN := $(BUILD)/esmeta
TESTBIN := $(BUILD)/esmeta-tests

# Objects depend on the flags they were built with: when configuration changes (MPI appears,
# a sanitizer build, ...), everything is rebuilt rather than mixing old and new objects.
FLAGS_NOW := $(CC) $(CPPFLAGS) $(CFLAGS) $(MPI_CFLAGS) $(LDLIBS)
ifneq ($(FLAGS_NOW),$(file < $(BUILD)/flags.txt))
$(shell mkdir -p $(BUILD))
$(file > $(BUILD)/flags.txt,$(FLAGS_NOW))
endif

.PHONY: all deps test test-asan test-kernels check clean run bench bench-report shared install uninstall \
        install-check fuzz fuzz-coverage
all: $(LIB) $(BIN)

$(BUILD)/obj/%.o: %.c $(BUILD)/flags.txt
	@mkdir -p $(dir $@)
	@echo "CC $<"
	@$(CC) $(CPPFLAGS) $(CFLAGS) $(if $(findstring src/dist/,$<),$(MPI_CFLAGS)) -MMD -MP -c $< -o $@

$(BUILD)/obj/%.o: %.cu
	@mkdir -p $(dir $@)
	@echo "NVCC $<"
	@$(NVCC) $(CPPFLAGS) $(NVCCFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ) $(CUDA_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# The shared library is built from a second set of position-independent objects, so the static
# library and the binary stay exactly as they are; `make shared` (or install) builds it.
SOVERSION := $(firstword $(subst ., ,$(VERSION)))
SONAME    := libesmeta.so.$(SOVERSION)
SHLIB     := $(BUILD)/libesmeta.so.$(VERSION)
PIC_OBJ   := $(LIB_SRC:%.c=$(BUILD)/pic/%.o) $(CUDA_PIC)

$(BUILD)/pic/%.o: %.c $(BUILD)/flags.txt
	@mkdir -p $(dir $@)
	@echo "CC -fPIC $<"
	@$(CC) $(CPPFLAGS) $(CFLAGS) -fPIC $(if $(findstring src/dist/,$<),$(MPI_CFLAGS)) -MMD -MP -c $< -o $@

$(BUILD)/pic/%.o: %.cu
	@mkdir -p $(dir $@)
	@echo "NVCC -fPIC $<"
	@$(NVCC) $(CPPFLAGS) $(NVCCFLAGS) -Xcompiler -fPIC -MMD -MP -c $< -o $@

# --no-undefined: every library the code calls is recorded in the .so, so users link -lesmeta alone.
$(SHLIB): $(PIC_OBJ)
	$(CC) $(LDFLAGS) -shared -Wl,-soname,$(SONAME) -Wl,--no-undefined -o $@ $^ $(LDLIBS)

shared: $(SHLIB)

$(BIN): $(CLI_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS)

# The test registry lists every TEST(name) in tests/*.c, so adding a test touches one file.
$(BUILD)/test_registry.c: $(TEST_SRC)
	@mkdir -p $(dir $@)
	scripts/gen-test-registry $(TEST_SRC) > $@

$(BUILD)/obj/test_registry.o: $(BUILD)/test_registry.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -Itests -c $< -o $@

$(TESTBIN): $(TEST_OBJ) $(LIB) $(BUILD)/libwrong-sgemm.so
	$(CC) $(LDFLAGS) -o $@ $(TEST_OBJ) $(LIB) $(LDLIBS)

# A deliberately wrong cblas_sgemm, preloaded by the test that the CLI refuses a bad kernel.
$(BUILD)/libwrong-sgemm.so: tests/support/wrong_sgemm.c
	$(CC) -std=c11 -O2 -shared -fPIC -Wall -Wextra -Werror $(BLAS_CFLAGS) -o $@ $<

# Benchmarks are programs, never timed tests; bench/README.md says how to run them.
bench: all $(BENCH_BIN)

$(BUILD)/bench_%: $(BUILD)/obj/bench/bench_%.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# The performance report in one run (JSON lines on stdout, a table on stderr), e.g.
#   make bench-report REPORT_ARGS="data/omniglot.esmc --quick"     (bench/report.sh --help)
bench-report: bench
	@bench/report.sh $(REPORT_ARGS)

deps:
	@scripts/install-deps

# Installing like a C library: `make install PREFIX=/usr/local` (DESTDIR stages a package root).
PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR     ?= $(PREFIX)/bin
PCDIR      ?= $(LIBDIR)/pkgconfig
HEADERS    := include/esmeta.h $(sort $(wildcard include/esmeta/*.h))

# Static users need what the library itself links: the pkg-config modules it uses, and the
# libraries that have none (the pthreads OpenBLAS sits outside pkg-config's path, MPI, CUDA, OpenMP).
PC_REQUIRES := $(PKGS)$(if $(filter 1,$(HAVE_MPI)), ompi-c)
PC_LIBS     := $(BLAS_LIBS) $(CUDA_LIBS) -lgomp -lpthread -lm

# The .pc file is written at install time, so it always names the PREFIX of this install.
install: $(LIB) $(BIN) $(SHLIB)
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/esmeta $(DESTDIR)$(BINDIR) $(DESTDIR)$(PCDIR)
	install -m 644 $(LIB) $(DESTDIR)$(LIBDIR)/libesmeta.a
	install -m 755 $(SHLIB) $(DESTDIR)$(LIBDIR)/libesmeta.so.$(VERSION)
	ln -sf libesmeta.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libesmeta.so
	install -m 644 include/esmeta.h $(DESTDIR)$(INCLUDEDIR)/esmeta.h
	install -m 644 $(filter include/esmeta/%,$(HEADERS)) $(DESTDIR)$(INCLUDEDIR)/esmeta/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' -e 's|@REQUIRES@|$(PC_REQUIRES)|' -e 's|@LIBS@|$(PC_LIBS)|' \
	    esmeta.pc.in > $(DESTDIR)$(PCDIR)/esmeta.pc
	install -m 755 $(BIN) $(DESTDIR)$(BINDIR)/esmeta

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libesmeta.a $(DESTDIR)$(LIBDIR)/libesmeta.so.$(VERSION) \
	      $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libesmeta.so $(DESTDIR)$(PCDIR)/esmeta.pc \
	      $(DESTDIR)$(BINDIR)/esmeta $(DESTDIR)$(INCLUDEDIR)/esmeta.h \
	      $(addprefix $(DESTDIR)$(INCLUDEDIR)/esmeta/,$(notdir $(filter include/esmeta/%,$(HEADERS))))
	-rmdir $(DESTDIR)$(INCLUDEDIR)/esmeta 2>/dev/null

# Installs into a temporary prefix, builds examples/ against it through pkg-config (shared and
# static), runs them and checks that they converge; then uninstalls and checks nothing is left.
install-check: deps
	@$(MAKE) --no-print-directory all shared
	@scripts/install-check

test: deps
	@$(MAKE) --no-print-directory all $(TESTBIN)
	ESM_TEST_CLI=$(BIN) $(TESTBIN) $(T)

test-asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan SAN=1 all build-asan/esmeta-tests
	ASAN_OPTIONS=detect_leaks=1 ESM_TEST_LABEL=asan ESM_TEST_CLI=build-asan/esmeta build-asan/esmeta-tests $(T)

# The determinism tests again under every OpenBLAS kernel this CPU can run (normal build).
test-kernels: deps
	@$(MAKE) --no-print-directory all $(TESTBIN)
	@scripts/test-kernels

# Both builds and every kernel, one closing line for them all.
check: deps
	@scripts/run-checks

# The fuzz campaign: each harness of fuzz/ (or FUZZ_NAMES) under libFuzzer with ASan+UBSan for FUZZ_SECONDS,
# starting from its seed corpus; new inputs go to build-fuzz/corpus/<harness>, crashes to
# build-fuzz/crashes/ (fuzz/README.md). The tests replay fuzz/corpus without clang.
FUZZ_CC      ?= clang-14
FUZZ_SECONDS ?= 60
FUZZ_NAMES   ?= $(patsubst fuzz/fuzz_%.c,%,$(filter-out fuzz/fuzz_file.c,$(FUZZ_SRC)))
# The harnesses of parsers that take a path write each input to a file: on a tmpfs they run
# several times faster than on disk.
FUZZ_TMP     ?= $(if $(wildcard /dev/shm),/dev/shm,/tmp)
fuzz: deps
	@$(MAKE) --no-print-directory BUILD=build-fuzz SAN=fuzz CC=$(FUZZ_CC) NVCC= build-fuzz/libesmeta.a
	@mkdir -p build-fuzz/crashes
	@set -e; for h in $(FUZZ_NAMES); do \
	    $(FUZZ_CC) $(CPPFLAGS) -DESM_LIBFUZZER -g -O1 -fsanitize=fuzzer,address,undefined \
	        -fno-sanitize-recover=undefined $(PKG_CFLAGS) -o build-fuzz/fuzz_$$h fuzz/fuzz_$$h.c fuzz/fuzz_file.c $(CLI_ARGS_SRC) \
	        build-fuzz/libesmeta.a $(PKG_LIBS) $(MPI_LIBS) -fopenmp -lm; \
	    mkdir -p build-fuzz/corpus/$$h; \
	    echo "FUZZ $$h for $(FUZZ_SECONDS) s"; \
	    TMPDIR=$(FUZZ_TMP) build-fuzz/fuzz_$$h -max_total_time=$(FUZZ_SECONDS) -timeout=1 -rss_limit_mb=2048 -print_final_stats=1 \
	        -artifact_prefix=build-fuzz/crashes/$$h- -close_fd_mask=3 build-fuzz/corpus/$$h fuzz/corpus/$$h; \
	done

# Line coverage of each harness's parser over its corpus (clang source-based coverage).
fuzz-coverage: all
	@fuzz/coverage.sh

# The main job: set up, prepare the data, and run what esmeta is for.
run: deps
	@$(MAKE) --no-print-directory all
	@scripts/main-job

clean:
	rm -rf build build-asan build-fuzz

-include $(PIC_OBJ:.o=.d) $(LIB_OBJ:.o=.d) $(CUDA_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d)
