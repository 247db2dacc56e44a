# Gatehouse build. `make` builds build/gatehouse; `make run` installs what is missing, builds
# and serves; `make test` installs, builds and runs every test (unit, sanitizer, end to end).

CC ?= cc
# Node.js 20 that scripts/deps.sh took into .deps/ when the system's is older comes first.
export PATH := $(CURDIR)/.deps/node/bin:$(PATH)
V ?= 0
Q := $(if $(filter 1,$(V)),,@)
say = $(if $(filter 1,$(V)),,@printf '  %-6s %s\n' $(1) $(2);)
PKGS := libmicrohttpd libh2o-evloop libcurl jansson sqlite3 libpq libsodium inih openssl zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes \
        -Wvla -Wno-missing-field-initializers
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=c17 -D_GNU_SOURCE -DH2O_USE_LIBUV=0 $(WARN) $(CFLAGS) -Isrc -Ibuild/gen \
              $(PKG_CFLAGS) -MMD -MP
LDLIBS := $(PKG_LIBS) -lhpdf -lpthread -lm

SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

SRC := $(sort $(wildcard src/*/*.c src/store/*/*.c))
WEB := $(sort $(shell find web -type f 2>/dev/null))
MIGRATIONS := $(sort $(wildcard src/store/sqlite/migrations/*.sql))
PG_MIGRATIONS := $(sort $(wildcard src/store/postgres/migrations/*.sql))
GEN := build/gen/assets.c build/gen/migrations.c build/gen/pg_migrations.c
LIB_SRC := $(SRC) $(GEN)

OBJ := $(patsubst %.c,build/obj/%.o,$(LIB_SRC))
SAN_OBJ := $(patsubst %.c,build/san/%.o,$(LIB_SRC))

UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(patsubst tests/unit/%.c,build/tests/%,$(UNIT_SRC))
UNIT_SAN := $(patsubst tests/unit/%.c,build/tests-san/%,$(UNIT_SRC))

.PHONY: all deps run test test-steps unit unit-san fuzz e2e e2e-san e2e-pg clean format bench-admission bench-check
# The benchmarks written in C are built (not run) with everything else, so they keep compiling.
all: build/gatehouse build/bench-reports build/bench-usage build/bench-scan build/bench-latency

deps:
	@scripts/deps.sh

build/tools/embed: tools/embed.c
	@mkdir -p $(@D)
	$(call say,CC,$<)$(CC) -std=c17 -O2 $(WARN) -o $@ $<

build/gen/assets.c: build/tools/embed $(WEB)
	@mkdir -p $(@D)
	$(call say,EMBED,$@)build/tools/embed assets web $@ $(WEB)

# The folder too: its time changes when a file is removed, which no file's time shows.
build/gen/migrations.c: build/tools/embed $(MIGRATIONS) src/store/sqlite/migrations
	@mkdir -p $(@D)
	$(call say,EMBED,$@)build/tools/embed migrations src/store/sqlite/migrations $@ $(MIGRATIONS)

build/gen/pg_migrations.c: build/tools/embed $(PG_MIGRATIONS) src/store/postgres/migrations
	@mkdir -p $(@D)
	$(call say,EMBED,$@)build/tools/embed pg_migrations src/store/postgres/migrations $@ $(PG_MIGRATIONS)

build/obj/%.o: %.c | $(GEN)
	@mkdir -p $(@D)
	$(call say,CC,$<)$(CC) $(ALL_CFLAGS) -c -o $@ $<

build/san/%.o: %.c | $(GEN)
	@mkdir -p $(@D)
	$(call say,CC-SAN,$<)$(CC) $(ALL_CFLAGS) $(SAN) -O1 -c -o $@ $<

build/libgh.a: $(OBJ)
	@rm -f $@
	$(call say,AR,$@)ar rcs $@ $^

build/libgh-san.a: $(SAN_OBJ)
	@rm -f $@
	$(call say,AR,$@)ar rcs $@ $^

build/gatehouse: build/obj/src/main.o build/libgh.a
	$(call say,LINK,$@)$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

build/gatehouse-san: build/san/src/main.o build/libgh-san.a
	$(call say,LINK,$@)$(CC) $(ALL_CFLAGS) $(SAN) -O1 -o $@ $^ $(LDLIBS)

build/san/src/main.o: src/main.c | $(GEN)
	@mkdir -p $(@D)
	$(call say,CC-SAN,$<)$(CC) $(ALL_CFLAGS) $(SAN) -O1 -c -o $@ $<

build/obj/src/main.o: src/main.c | $(GEN)
	@mkdir -p $(@D)
	$(call say,CC,$<)$(CC) $(ALL_CFLAGS) -c -o $@ $<

build/tests/%: tests/unit/%.c build/libgh.a
	@mkdir -p $(@D)
	$(call say,LINK,$@)$(CC) $(ALL_CFLAGS) -o $@ $< build/libgh.a $(LDLIBS) -lcmocka $(TEST_LDFLAGS)

build/tests-san/%: tests/unit/%.c build/libgh-san.a
	@mkdir -p $(@D)
	$(call say,LINK,$@)$(CC) $(ALL_CFLAGS) $(SAN) -O1 -o $@ $< build/libgh-san.a $(LDLIBS) -lcmocka $(TEST_LDFLAGS)

# The usage-report benchmark on both stores: `build/bench-reports [events] [database]
# [postgresql://...]` (bench/README.md).
build/bench-reports: bench/reports.c build/libgh.a
	@mkdir -p $(@D)
	$(call say,LINK,$@)$(CC) $(ALL_CFLAGS) -o $@ $< build/libgh.a $(LDLIBS)

# The model API's JSON scanner on long prompts: `build/bench-scan` (bench/README.md).
build/bench-scan: bench/request_scan.c build/libgh.a
	@mkdir -p $(@D)
	$(call say,LINK,$@)$(CC) $(ALL_CFLAGS) -o $@ $< build/libgh.a $(LDLIBS)

# One client on one connection, each request's latency (bench/run's latency figures):
# `build/bench-latency HOST:PORT PATH SECONDS [HEADER ...] < BODY`.
build/bench-latency: bench/latency.c
	@mkdir -p $(@D)
	$(call say,LINK,$@)$(CC) $(ALL_CFLAGS) -o $@ $<

# The usage writer's commits on both backends: `build/bench-usage [events] [postgresql://...]`.
build/bench-usage: bench/usage_writer.c build/libgh.a
	@mkdir -p $(@D)
	$(call say,LINK,$@)$(CC) $(ALL_CFLAGS) -o $@ $< build/libgh.a $(LDLIBS)

# The invoice test sends the renderer's HPDF_New through an allocator that fails on demand.
build/tests/test_invoice_pdf build/tests-san/test_invoice_pdf: TEST_LDFLAGS := -Wl,--wrap=HPDF_New
# The yield test counts the yield points' sched_yield calls.
build/tests/test_yield build/tests-san/test_yield: TEST_LDFLAGS := -Wl,--wrap=sched_yield

# Deadlines: every unit binary (UNIT_TIMEOUT_S), every end-to-end file (E2E_FILE_TIMEOUT_MS:
# node's --test-timeout applies to each file and each test in it) and the whole `make test`
# (TEST_DEADLINE_S; the process group is killed past it). Each runner writes its counts to
# $(RESULTS) for the closing summary.
UNIT_TIMEOUT_S ?= 300
E2E_FILE_TIMEOUT_MS ?= 600000
TEST_DEADLINE_S ?= 1800
RESULTS := build/test-results

unit: $(UNIT_BIN)
	@RESULTS=$(RESULTS) UNIT_LABEL=unit UNIT_TIMEOUT_S=$(UNIT_TIMEOUT_S) scripts/run-unit.sh $(UNIT_BIN)

unit-san: $(UNIT_SAN)
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		LSAN_OPTIONS=suppressions=$(CURDIR)/scripts/lsan.supp:print_suppressions=0 \
		RESULTS=$(RESULTS) UNIT_LABEL=unit-san UNIT_TIMEOUT_S=$(UNIT_TIMEOUT_S) scripts/run-unit.sh $(UNIT_SAN)

# libFuzzer targets for the parsers that face the network (clang, with ASan and UBSan): each
# is the parser's own source, instrumented, linked with the rest of the library. `make fuzz`
# runs each for FUZZ_RUNS inputs from its seed corpus (new finds go to build/fuzz/, never
# into the tree); `build/fuzz/<name> build/fuzz/corpus-<name> tests/fuzz/corpus/<name>` runs
# one for as long as you like.
FUZZ_CC ?= clang
FUZZ_RUNS ?= 40000
FUZZ_FLAGS := -std=c17 -D_GNU_SOURCE -DH2O_USE_LIBUV=0 -g -O1 -Isrc -Ibuild/gen $(PKG_CFLAGS) \
              -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_SRC_request := src/gateway/request.c
FUZZ_SRC_meter := src/gateway/meter.c src/gateway/request.c src/lib/money.c
FUZZ_SRC_dechunk := src/gateway/hclient.c
FUZZ_SRC_stripe_sig := src/lib/stripe_sig.c
FUZZ_SRC_framing := src/lib/framing.c src/lib/proxy.c
FUZZ_NAMES := request meter dechunk stripe_sig framing
FUZZ_BIN := $(patsubst %,build/fuzz/%,$(FUZZ_NAMES))

build/fuzz/%: tests/fuzz/fuzz_%.c build/libgh.a
	@mkdir -p $(@D)
	$(call say,FUZZ-CC,$@)$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(FUZZ_SRC_$*) build/libgh.a $(LDLIBS)

fuzz: $(FUZZ_BIN)
	@mkdir -p $(RESULTS); ok=0; \
	for n in $(FUZZ_NAMES); do \
		mkdir -p build/fuzz/corpus-$$n; \
		ASAN_OPTIONS=detect_leaks=1 timeout -k 5 $(UNIT_TIMEOUT_S) build/fuzz/$$n -runs=$(FUZZ_RUNS) -seed=1 \
			-print_final_stats=0 build/fuzz/corpus-$$n tests/fuzz/corpus/$$n >build/fuzz/$$n.log 2>&1 \
			|| { tail -40 build/fuzz/$$n.log; echo "fuzz: $$n FAILED"; \
			     echo "fuzz: $$ok passed, 1 failed, 0 skipped" >$(RESULTS)/fuzz.txt; exit 1; }; \
		ok=$$((ok + 1)); \
		echo "fuzz: $$n: $(FUZZ_RUNS) inputs, no crash, leak or undefined behaviour"; \
	done; \
	echo "fuzz: $$ok passed, 0 failed, 0 skipped" | tee $(RESULTS)/fuzz.txt

# Spec output on the terminal, TAP into $(RESULTS) for the counts.
# $(2): the files, every one by default.
E2E_RUN = node --test --test-timeout=$(E2E_FILE_TIMEOUT_MS) \
	--test-reporter=spec --test-reporter-destination=stdout \
	--test-reporter=tap --test-reporter-destination=$(RESULTS)/$(1).tap $(or $(2),tests/e2e/); \
	rc=$$?; RESULTS=$(RESULTS) scripts/tap-count.sh $(1) $(RESULTS)/$(1).tap && exit $$rc

e2e: build/gatehouse
	@mkdir -p $(RESULTS); $(call E2E_RUN,e2e)

# The same end-to-end suite against the server built with AddressSanitizer and
# UndefinedBehaviorSanitizer: any leak, overflow or undefined behaviour makes the server exit
# non-zero at shutdown, which the tests check. libh2o keeps per-thread memory caches that
# no API can empty; scripts/lsan.supp names them.
e2e-san: build/gatehouse-san
	@mkdir -p $(RESULTS); GATEHOUSE_BIN=$(CURDIR)/build/gatehouse-san \
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=86 \
		LSAN_OPTIONS=suppressions=$(CURDIR)/scripts/lsan.supp:print_suppressions=0 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		$(call E2E_RUN,e2e-san)

# The same end-to-end suite with every server on PostgreSQL 15 (tests/e2e/lib/server.mjs: one
# throwaway PostgreSQL per test file, a fresh database per server, stopped when the file ends).
# Tests about SQLite itself (its lock, its files) run on SQLite only and say so.
# Files that choose their store themselves run in e2e already, on the PostgreSQL they start
# (the cluster, PostgreSQL's outage, migrations and `store copy`): here they would only run
# the same thing a second time.
E2E_OWN_STORE = $(wildcard tests/e2e/cluster-*.test.mjs) tests/e2e/pg-outage.test.mjs \
	tests/e2e/pg-migrate.test.mjs tests/e2e/store-copy.test.mjs
E2E_PG_FILES = $(filter-out $(E2E_OWN_STORE),$(wildcard tests/e2e/*.test.mjs))
e2e-pg: build/gatehouse
	@mkdir -p $(RESULTS); GATEHOUSE_TEST_STORE=postgres $(call E2E_RUN,e2e-pg,$(E2E_PG_FILES))

# The admission engine's micro-benchmark (bench/README.md): build/bench/admission [seconds].
bench-admission: build/bench/admission

# The throughput regression guard (not part of `make test`): a short bench/run, one core,
# Anthropic route, not streaming; fails when Gatehouse/nginx falls more than 10% below the
# `bench-check-baseline:` line of bench/README.md, or when the run cannot be trusted.
bench-check: build/gatehouse
	bench/run --check

build/bench/admission: bench/admission.c build/libgh.a
	@mkdir -p $(@D)
	$(call say,LINK,$@)$(CC) $(ALL_CFLAGS) -O2 -o $@ $< build/libgh.a $(LDLIBS)

run: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p var
	build/gatehouse serve $(if $(wildcard gatehouse.ini),--config gatehouse.ini)

test: deps
	@rm -rf $(RESULTS) && mkdir -p $(RESULTS)
	@timeout -k 30 $(TEST_DEADLINE_S) $(MAKE) --no-print-directory test-steps; \
		scripts/test-summary.sh $(RESULTS) $$? $(TEST_DEADLINE_S)

# The three end-to-end suites (SQLite, SQLite under the sanitizers, PostgreSQL) run at once:
# three node processes, each running one file at a time. They mostly wait (on servers, on
# PostgreSQL; e2e-pg takes 8 minutes for 4 of CPU), so one after the other would take `make
# test` past its 15 minutes on two cores while together they fit. --output-sync keeps each
# suite's report in one piece.
test-steps:
	@$(MAKE) --no-print-directory all unit unit-san fuzz
	@$(MAKE) --no-print-directory -j3 --output-sync=target e2e e2e-san e2e-pg

format:
	clang-format -i $(SRC) src/main.c $(wildcard src/*/*.h) $(UNIT_SRC) tools/embed.c

clean:
	rm -rf build

-include $(OBJ:.o=.d) $(SAN_OBJ:.o=.d) build/obj/src/main.d build/san/src/main.d build/bench/admission.d
