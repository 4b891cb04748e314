# trailwatch build.
#
#   make            build build/trailwatch (release: -O2 -g)
#   make run        install missing Debian packages, build, run the main job on the embedded defaults
#   make check      install missing Debian packages, build (gcc plain + ASan/UBSan, clang), run every test
#   make clang      build with clang into build-clang/ (CI builds and unit-tests it beside gcc)
#   make torture    allocation-failure sweeps, every failure point once and from there on (ASan+UBSan)
#   make bench      run the benchmarks in bench/ and print their figures
#   make fuzz       build the libFuzzer targets (clang) into build/fuzz/
#   make man        the man pages, generated from each command's --help (build/man/)
#   make install    PREFIX=/usr/local, DESTDIR= for staging: binary, man pages, rule packs, examples,
#                   docs and the systemd unit (docs/GUIDE.md)
#   make deb        the Debian package, with dpkg-buildpackage (../trailwatch_VERSION_ARCH.deb)
#
# Dependencies come from Debian packages through pkg-config; scripts/setup-deps installs what is missing.

PKGS      := libcurl libmicrohttpd yaml-0.1 sqlite3 zlib openssl expat libnats libpcre2-8 libcrypt libzstd libpq
BUILD     ?= build
CC        ?= cc
SAN       ?=
PREFIX    ?= /usr/local
DESTDIR   ?=
BINDIR    ?= $(PREFIX)/bin
MANDIR    ?= $(PREFIX)/share/man
DATADIR   ?= $(PREFIX)/share/trailwatch
DOCDIR    ?= $(PREFIX)/share/doc/trailwatch
UNITDIR   ?= $(PREFIX)/lib/systemd/system

WARN      := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
             -Wformat=2 -Wvla -Wpointer-arith -Wcast-align -Wwrite-strings -Wundef \
             -Wnull-dereference -Wimplicit-fallthrough -Wpedantic
OPT       ?= -O2 -g
CPPFLAGS  += -Iinclude -Isrc -I$(BUILD)/gen -D_GNU_SOURCE
CFLAGS    += -std=c17 $(OPT) $(WARN) -fno-strict-aliasing $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS    += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm

ifeq ($(SAN),1)
  BUILD   := build-san
  OPT     := -O1 -g -fno-omit-frame-pointer
  CFLAGS  += -fsanitize=address,undefined -fno-sanitize-recover=all
  LDFLAGS += -fsanitize=address,undefined
endif

LIB_SRC   := $(sort $(filter-out src/cli/%,$(wildcard src/*/*.c)))
# The dashboard's page (web/): bundled by esbuild (npm, web/package-lock.json) and compiled in.
WEB_SRC   := web/index.html $(sort $(wildcard web/src/*.js web/src/*.css))
WEB_NPM   := web/node_modules/.package-lock.json
WEB_GEN   := $(BUILD)/gen/web_assets.c
WEB_OBJ   := $(BUILD)/obj/gen/web_assets.o
CLI_SRC   := $(sort $(wildcard src/cli/*.c))
UNIT_SRC  := $(sort $(wildcard tests/unit/test_*.c))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ   := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
LIB       := $(BUILD)/libtrailwatch.a
PC        := $(BUILD)/trailwatch.pc
# MAJOR.MINOR.PATCH from include/trailwatch/trailwatch.h, the one place the version is written
VERSION   := $(shell awk '/define TW_VERSION_(MAJOR|MINOR|PATCH) / { v = v s $$3; s = "." } END { print v }' include/trailwatch/trailwatch.h)
BIN       := $(BUILD)/trailwatch
GEN       := $(BUILD)/gen/casefold_table.h
PATHS     := $(BUILD)/gen/paths.h

.PHONY: all run check check-inner bench fuzz deps clean unit torture clang man install deb FORCE
all: $(BIN) $(UNIT_BIN) $(PC)

deps:
	@scripts/setup-deps

# run needs the program only: the unit tests are `make check`'s business
run: deps
	@$(MAKE) --no-print-directory $(BIN)
	@scripts/run-default

check: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory SAN=1 all
	@$(MAKE) --no-print-directory clang
	@$(MAKE) --no-print-directory -f fuzz/Makefile
	@python3 tests/run.py

clang:
	@$(MAKE) --no-print-directory CC=clang BUILD=build-clang all

torture: deps
	@$(MAKE) --no-print-directory SAN=1 build-san/tests/test_torture
	@TW_TORTURE=full ASAN_OPTIONS=detect_leaks=1 build-san/tests/test_torture

bench: deps
	@$(MAKE) --no-print-directory all
	@bench/run; a=$$?; bench/dashboard; b=$$?; exit $$(( a > b ? a : b ))

fuzz: deps
	@$(MAKE) --no-print-directory -f fuzz/Makefile

$(GEN): scripts/gen-casefold.awk
	@mkdir -p $(dir $@)
	@awk -f scripts/gen-casefold.awk /usr/share/unicode/CaseFolding.txt > $@.tmp && mv $@.tmp $@

# Where the installed program finds its rule packs: rewritten only when PREFIX changes, so that only
# what includes it (config_packs.c, by its .d file) is rebuilt.
$(PATHS): FORCE
	@mkdir -p $(dir $@)
	@printf '#define TW_RULES_DIR "%s"\n' '$(DATADIR)/rules' > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

$(BUILD)/obj/%.o: %.c $(GEN) | $(PATHS)
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	@$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(WEB_NPM): web/package-lock.json web/package.json
	@scripts/setup-deps web

$(BUILD)/web/app.js: $(WEB_SRC) $(WEB_NPM)
	@echo "  WEB   $@"
	@rm -rf $(BUILD)/web && mkdir -p $(BUILD)/web
	@web/node_modules/.bin/esbuild app=web/src/main.js --bundle --minify --format=esm --target=es2020 \
	    --splitting --chunk-names=chunk-[hash] --legal-comments=none --log-level=warning --outdir=$(BUILD)/web

$(WEB_GEN): $(BUILD)/web/app.js scripts/gen-web-assets.py
	@python3 scripts/gen-web-assets.py web/index.html $(BUILD)/web > $@.tmp && mv $@.tmp $@

$(WEB_OBJ): $(WEB_GEN)
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	@$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ) $(WEB_OBJ)
	@rm -f $@
	@ar rcs $@ $^

$(PC): trailwatch.pc.in include/trailwatch/trailwatch.h Makefile
	@mkdir -p $(dir $@)
	@sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' -e 's|@REQUIRES@|$(PKGS)|' $< > $@.tmp && mv $@.tmp $@

$(BIN): $(CLI_OBJ) $(LIB)
	@echo "  LD    $@"
	@$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	@$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# Allocation-failure tests: the library's malloc, calloc, realloc, strdup and strndup go through
# tests/unit/failalloc.c, which fails the Nth on demand (tests/unit/failalloc.h).
TORTURE_WRAP := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup
$(BUILD)/tests/test_torture: $(BUILD)/obj/tests/unit/test_torture.o $(BUILD)/obj/tests/unit/failalloc.o $(LIB)
	@mkdir -p $(dir $@)
	@$(CC) $(LDFLAGS) $(TORTURE_WRAP) -o $@ $(filter %.o,$^) $(LIB) $(LDLIBS)

man: $(BIN)
	@python3 scripts/gen-man $(BIN) $(BUILD)/man

EXAMPLES := examples/trailwatch.yml examples/dynamodb-create-table/trailwatch.yml \
            examples/dynamodb-create-table/dynamodb-prices.yml examples/dynamodb-create-table/serverless.yml \
            examples/dynamodb-create-table/handler.py examples/ssm-parameter-store/serverless.yml \
            examples/ssm-parameter-store/handler.py $(wildcard examples/ssm-parameter-store/trailwatch.yml)

install: $(BIN) man
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(DATADIR)/rules $(DESTDIR)$(DOCDIR) \
	           $(DESTDIR)$(DOCDIR)/examples/dynamodb-create-table $(DESTDIR)$(DOCDIR)/examples/ssm-parameter-store \
	           $(DESTDIR)$(UNITDIR)
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/trailwatch
	install -m 0644 $(BUILD)/man/*.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 rules/*.yml rules/README.md $(DESTDIR)$(DATADIR)/rules/
	for f in $(EXAMPLES); do install -m 0644 $$f $(DESTDIR)$(DOCDIR)/$$f; done
	install -m 0644 README.md docs/*.md packaging/trailwatch.yml $(DESTDIR)$(DOCDIR)/
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g' packaging/trailwatch.service \
	    > $(DESTDIR)$(UNITDIR)/trailwatch.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/trailwatch.service

deb: deps
	dpkg-buildpackage -us -uc -b

clean:
	rm -rf build build-san build-clang

# Objects are intermediate files of the test binaries: keep them, or every make rebuilds them all.
.SECONDARY:

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(UNIT_BIN:$(BUILD)/tests/%=$(BUILD)/obj/tests/unit/%.d) \
         $(BUILD)/obj/tests/unit/failalloc.d
