# hsmgate — one Makefile for the whole tree.
#
# The process split is visible here (STYLE.md rule 3):
#   hsmgated          gateway/ + policy/ + audit/ + config/ + proto/   (never keystore or key code)
#   hsmgate-worker    hsm-partitions/ + policy/ + config/ + proto/      (never listener code)
#   libhsmgate-pkcs11 client/ + config/ + proto/                       (tenant side)
#   tools             only the libraries each one uses
#
# Each module folder holds one public header and its sources; every *.c except main.c goes
# into build/lib/lib<module>.a. A module's main.c is its program.

BUILD    ?= build
SANITIZE ?= 0
CC       ?= cc
ifeq ($(SANITIZE),1)
  ifeq ($(BUILD),build)
    BUILD := build-san
  endif
endif

PKGS      := libevent libevent_openssl libevent_pthreads openssl lmdb libcjson libcyaml p11-kit-1
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)

# CFLAGS/LDFLAGS are the user's (optimisation, sanitizers); the required flags are separate
# so that `make CFLAGS=...` (as the fuzz build does) cannot drop them.
CFLAGS   ?= -O2 -g
LDFLAGS  ?=
ALL_CFLAGS = $(CFLAGS) -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral \
            -Wmissing-prototypes -Wstrict-prototypes -fPIC -fvisibility=hidden \
            -fno-strict-aliasing -D_GNU_SOURCE -I. $(PKG_CFLAGS)
ALL_LDFLAGS = $(LDFLAGS)
ifeq ($(SANITIZE),1)
  ALL_CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  ALL_LDFLAGS += -fsanitize=address,undefined
endif

LIB_EVENT := -levent_openssl -levent_pthreads -levent
LIB_SSL   := -lssl -lcrypto
LIB_LMDB  := -llmdb
LIB_JSON  := -lcjson
LIB_YAML  := -lcyaml -lyaml
LIB_CUNIT := -lcunit

# ---- modules -----------------------------------------------------------------------------
# module name = folder; lib name = prefix
MODULES := proto config policy audit hsm-partitions gateway client
lib_proto          := proto
lib_config         := cfg
lib_policy         := pol
lib_audit          := aud
lib_hsm-partitions := part
lib_gateway        := gw
lib_client         := cli

# A module may keep a concern in a subfolder (hsm-partitions/crypto/); it is still one library.
mod_srcs = $(filter-out $(1)/main.c,$(wildcard $(1)/*.c $(1)/*/*.c))
mod_objs = $(patsubst %.c,$(BUILD)/obj/%.o,$(call mod_srcs,$(1)))
mod_lib  = $(BUILD)/lib/lib$(lib_$(1)).a

define MODULE_RULES
$(call mod_lib,$(1)): $(call mod_objs,$(1))
	@mkdir -p $$(@D)
	@rm -f $$@
	$$(if $$^,ar rcs $$@ $$^,ar rcs $$@)
endef
$(foreach m,$(MODULES),$(eval $(call MODULE_RULES,$(m))))

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

L = $(BUILD)/lib/lib$(1).a

# ---- programs ----------------------------------------------------------------------------
BIN := $(BUILD)/bin
HSMGATED     := $(BIN)/hsmgated
WORKER       := $(BIN)/hsmgate-worker
CLIENT_SO    := $(BUILD)/lib/libhsmgate-pkcs11.so
TOOLS        := $(BIN)/hsmctl $(BIN)/hsmgate-audit $(BIN)/hsmgate-policy \
                $(if $(wildcard tools/hsmgate-bench/*.c),$(BIN)/hsmgate-bench)

GW_LIBS     := $(call L,gw) $(call L,pol) $(call L,aud) $(call L,cfg) $(call L,proto)
WORKER_LIBS := $(call L,part) $(call L,pol) $(call L,cfg) $(call L,proto)
CLIENT_LIBS := $(call L,cli) $(call L,cfg) $(call L,proto)

all: $(HSMGATED) $(WORKER) $(CLIENT_SO) $(TOOLS)

$(HSMGATED): $(BUILD)/obj/gateway/main.o $(GW_LIBS)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIB_EVENT) $(LIB_SSL) $(LIB_JSON) $(LIB_YAML) -lpthread

$(WORKER): $(BUILD)/obj/hsm-partitions/main.o $(WORKER_LIBS)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIB_LMDB) $(LIB_SSL) $(LIB_YAML) $(LIB_JSON)

# The client module exports the PKCS #11 entry points and nothing else (client/exports.map).
$(CLIENT_SO): $(CLIENT_LIBS) client/exports.map
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -shared -o $@ -Wl,--whole-archive $(call L,cli) -Wl,--no-whole-archive \
	  $(call L,cfg) $(call L,proto) -Wl,--version-script=client/exports.map \
	  -Wl,-z,defs -Wl,-z,now $(LIB_SSL) $(LIB_YAML) -lpthread

tool_objs = $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard tools/$(1)/*.c))

$(BIN)/hsmctl: $(call tool_objs,hsmctl) $(call L,part) $(call L,pol) $(call L,cfg) $(call L,proto)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIB_LMDB) $(LIB_SSL) $(LIB_YAML) $(LIB_JSON)

$(BIN)/hsmgate-audit: $(call tool_objs,hsmgate-audit) $(call L,aud)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIB_SSL) $(LIB_JSON) -lpthread

$(BIN)/hsmgate-policy: $(call tool_objs,hsmgate-policy) $(call L,pol)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIB_SSL) $(LIB_YAML) $(LIB_JSON)

# hsmgate-bench loads any PKCS #11 module with dlopen; it links none of our PKCS #11 code on
# purpose, so it measures our module exactly as it measures SoftHSMv2 or p11-kit-client.
# libaud is linked only for its in-process audit operations (audit-append, audit-verify).
$(BIN)/hsmgate-bench: $(call tool_objs,hsmgate-bench) $(call L,aud)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ -ldl -lpthread $(LIB_SSL) $(LIB_JSON)

# ---- tests -------------------------------------------------------------------------------
# tests/<module>/test_<file>.c: one CUnit suite each, one binary each, main() from tests/lib.
TESTLIB_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard tests/lib/*.c))
$(BUILD)/lib/libtestlib.a: $(TESTLIB_OBJS)
	@mkdir -p $(@D)
	@rm -f $@
	$(if $^,ar rcs $@ $^,ar rcs $@)

test_libs_proto          := proto
test_libs_config         := cfg
test_libs_policy         := pol
test_libs_audit          := aud
test_libs_hsm-partitions := part pol cfg proto
test_libs_gateway        := gw pol aud cfg proto
test_libs_client         := cli cfg proto
# Extra test-only objects a module's tests link (shared fixtures such as a fake gateway).
test_extra_client := $(BUILD)/obj/tests/client/fakegw.o
test_extra_hsm-partitions := $(BUILD)/obj/tests/hsm-partitions/crypto/crypto_test.o
TEST_SYSLIBS := $(LIB_CUNIT) $(LIB_EVENT) $(LIB_SSL) $(LIB_LMDB) $(LIB_JSON) $(LIB_YAML) -lpthread

UNIT_SRCS  := $(foreach m,$(MODULES),$(wildcard tests/$(m)/test_*.c tests/$(m)/*/test_*.c))
UNIT_BINS  := $(patsubst tests/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

define UNIT_RULE
$(BUILD)/tests/$(1)/%: $(BUILD)/obj/tests/$(1)/%.o $(test_extra_$(1)) $(BUILD)/lib/libtestlib.a $(foreach l,$(test_libs_$(1)),$(call L,$(l)))
	@mkdir -p $$(@D)
	$(CC) $(ALL_LDFLAGS) -o $$@ $$^ $(TEST_SYSLIBS)
endef
$(foreach m,$(MODULES),$(eval $(call UNIT_RULE,$(m))))

# End-to-end helpers written in C (they load the client module with dlopen).
E2E_SRCS := $(filter-out tests/e2e/latch_module.c,$(wildcard tests/e2e/*.c))
E2E_BINS := $(patsubst tests/e2e/%.c,$(BUILD)/tests/e2e/%,$(E2E_SRCS))
$(BUILD)/tests/e2e/%: $(BUILD)/obj/tests/e2e/%.o $(BUILD)/lib/libtestlib.a
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ -ldl -lpthread $(LIB_SSL)

# A PKCS #11 module for the tests, in front of a vendor's (tests/e2e/latch_module.c).
E2E_LATCH := $(BUILD)/tests/e2e/liblatch-pkcs11.so
$(E2E_LATCH): $(BUILD)/obj/tests/e2e/latch_module.o
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -shared -o $@ $^ -ldl -lpthread

tests: all $(UNIT_BINS) $(E2E_BINS) $(E2E_LATCH)

# ---- fuzzing (clang + libFuzzer) ---------------------------------------------------------
FUZZ_SRCS := $(wildcard tests/fuzz/*_fuzz.c)
FUZZ_BUILD := build-fuzz
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/fuzz/%,$(FUZZ_SRCS))
fuzz_libs_proto_frame := proto
fuzz_libs_config      := cfg
fuzz_libs_policy      := pol
fuzz_libs_audit       := aud
fuzz_libs_sink        := aud

# -fno-sanitize-recover: a UBSan finding aborts the input, so that the run fails on it.
fuzz-build: deps
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=clang SANITIZE=0 \
	  CFLAGS="-O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fsanitize=address,undefined" \
	  $(foreach l,proto cfg pol aud,$(FUZZ_BUILD)/lib/lib$(l).a) fuzz-bins

# FUZZ_BUILD-relative rules run in the sub-make above.
fuzz-bins: $(FUZZ_BINS)
$(FUZZ_BUILD)/fuzz/%_fuzz: tests/fuzz/%_fuzz.c $(foreach l,proto cfg pol aud,$(FUZZ_BUILD)/lib/lib$(l).a)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer $< -o $@ \
	  $(foreach l,$(or $(fuzz_libs_$*),proto),$(FUZZ_BUILD)/lib/lib$(l).a) \
	  $(LIB_SSL) $(LIB_YAML) $(LIB_JSON) $(LIB_LMDB) -lpthread

# `make fuzz` runs every target for FUZZ_SECONDS each on its corpus; `make test` runs a
# bounded number of inputs per target as a regression check.
FUZZ_SECONDS ?= 60
fuzz: fuzz-build
	@for f in $(FUZZ_BINS); do n=$$(basename $$f _fuzz); mkdir -p tests/fuzz/corpus/$$n; \
	  echo "== $$n"; $$f -max_total_time=$(FUZZ_SECONDS) -max_len=65536 tests/fuzz/corpus/$$n || exit 1; done

# ---- the README's commands ---------------------------------------------------------------
DEB_PKGS := gcc make pkg-config openssl clang libclang-rt-14-dev \
            libevent-dev libssl-dev liblmdb-dev libcjson-dev libcyaml-dev libcunit1-dev libp11-kit-dev \
            opensc gnutls-bin libengine-pkcs11-openssl softhsm2 p11-kit lmdb-utils \
            rsyslog rsyslog-gnutls rsyslog-relp python3

deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "make deps: installing:" $$missing; \
	    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	  else \
	    echo "make deps: missing Debian packages; run as root:"; \
	    echo "  apt-get update && apt-get install -y $$missing"; exit 1; \
	  fi; \
	fi

build: deps
	$(MAKE) all

run: deps
	$(MAKE) all
	@tools/hsmgate-demo $(BUILD)

# FUZZ_RUNS inputs per fuzz target over its corpus: a regression check, not a fuzzing run.
FUZZ_RUNS ?= 20000
test: deps
	$(MAKE) tests
	$(MAKE) fuzz-build
	@BUILD=$(BUILD) FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_RUNS=$(FUZZ_RUNS) tests/run.sh

# The peer comparison of issue 6 (docs/BENCHMARKS.md); BENCH_QUICK=1 for a ~2.5 min run.
bench: deps
	$(MAKE) all
	tools/bench/run-bench.sh $(BUILD)

lint:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-san build-fuzz

.PHONY: all build deps run test tests lint clean bench fuzz fuzz-build fuzz-bins
# Keep object files that pattern chains would otherwise delete as intermediates. (Not a bare
# .SECONDARY:, which lets make skip a missing object whose source is older than its archive.)
.PRECIOUS: $(BUILD)/obj/%.o
.DEFAULT_GOAL := all
