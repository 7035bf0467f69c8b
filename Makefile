# dispatch: PGXS build. `make && make install`, then `make installcheck` (see scripts/test.sh).
EXTENSION  = dispatch
EXTVERSION = $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" $(EXTENSION).control)
MODULE_big = dispatch
OBJS       = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))

# The install script is assembled from sql/install/NN_topic.sql (doc/design.md §1).
INSTALL_PARTS = $(sort $(wildcard sql/install/*.sql))
DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql
DATA       = $(wildcard sql/$(EXTENSION)--*--*.sql)

# pg_regress: every sql/NN_topic.sql, on a temporary instance that preloads the library.
REGRESS      = $(sort $(patsubst sql/%.sql,%,$(filter-out sql/$(EXTENSION)%,$(wildcard sql/*.sql))))
REGRESS_OPTS = --temp-config=test/dispatch.conf --temp-instance=./tmp_check \
               --load-extension=$(EXTENSION) --port=$(or $(TEST_PORT),55431)

# Isolation specs: claim races.
ISOLATION      = $(sort $(patsubst test/isolation/specs/%.spec,%,$(wildcard test/isolation/specs/*.spec)))
ISOLATION_OPTS = --temp-config=test/dispatch.conf --temp-instance=./tmp_check_iso \
                 --inputdir=test/isolation --outputdir=test/isolation/output_iso \
                 --load-extension=$(EXTENSION) --port=$(or $(TEST_ISO_PORT),55432)

# Perl TAP tests (PostgreSQL::Test::Cluster): the worker, restarts, crashes, concurrency.
TAP_TESTS   = 1
PROVE_TESTS = $(sort $(wildcard test/t/*.pl))
PROVE_FLAGS = -I $(CURDIR)/test/t

EXTRA_CLEAN = sql/$(EXTENSION)--$(EXTVERSION).sql tmp_check_iso test/isolation/output_iso

PG_CONFIG ?= pg_config
PG_CPPFLAGS = -I$(srcdir)/src
PG_CFLAGS  += -std=gnu99
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies here: rebuild every object when a header changes.
$(OBJS): $(wildcard src/*.h)

sql/$(EXTENSION)--$(EXTVERSION).sql: $(INSTALL_PARTS) $(EXTENSION).control
	@{ echo "-- dispatch $(EXTVERSION): generated from sql/install/*.sql by make; edit those files."; \
	   printf '%s\n' '\echo Use "CREATE EXTENSION dispatch" to load this file. \quit'; \
	   for f in $(INSTALL_PARTS); do echo; echo "-- ---- $$f"; cat $$f; done; } > $@

# pgTAP suites, on a throwaway cluster of their own (needs postgresql-15-pgtap, pg_prove).
.PHONY: prove-pgtap bench
prove-pgtap:
	scripts/run-pgtap.sh

bench:
	bench/run.sh

# libFuzzer harness for the schedule spec parser and next-fire arithmetic (fuzz/README.md).
# Built from the pure C files alone: no PostgreSQL headers or server needed.
.PHONY: fuzz
fuzz: fuzz/cronspec_fuzz
fuzz/cronspec_fuzz: fuzz/cronspec_fuzz.c src/cronspec.c src/cronnext.c src/cronspec.h
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	      -Wall -Wextra -Wno-unused-parameter -Werror -I src -o $@ \
	      fuzz/cronspec_fuzz.c src/cronspec.c src/cronnext.c
EXTRA_CLEAN += fuzz/cronspec_fuzz
