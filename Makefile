# epmd-c: a drop-in replacement for Erlang's port mapper daemon.

PROG		 = epmd-c
PREFIX		?= /usr/local
BINDIR		?= $(PREFIX)/bin
MANDIR		?= $(PREFIX)/share/man
DESTDIR		?=
PYTHON		?= python3

include mk/common.mk

# BUILD holds objects; BIN is the daemon. The sanitizer build sets both.
BUILD		?= build
BIN		?= $(PROG)

CFLAGS		?= -O2 -g
CPPFLAGS	+= -D_GNU_SOURCE
SANFLAGS	 = -fsanitize=address,undefined -fno-sanitize-recover=all \
		   -fno-omit-frame-pointer
ALL_CFLAGS	 = $(WARNFLAGS) $(CPPFLAGS) $(EXTRA_CFLAGS) $(CFLAGS) \
		   $(DEP_CFLAGS)
LIBS		 = $(DEP_LIBS)
CHECK_CFLAGS	 = $(shell $(PKG_CONFIG) --cflags check)
CHECK_LIBS	 = $(shell $(PKG_CONFIG) --libs check)

SRCS		 = $(wildcard src/*.c)
OBJS		 = $(SRCS:src/%.c=$(BUILD)/%.o)
LIB_OBJS	 = $(filter-out $(BUILD)/main.o,$(OBJS))
UNIT_SRCS	 = $(wildcard tests/unit/test_*.c)
UNIT_BINS	 = $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/%)

.PHONY: all run check check-run unit asan deps deps-build deps-test \
	install clean bench fuzz lint deb

# A plain build needs only pkg-config and the libraries: no package manager.
all: $(BIN)

$(BIN): $(OBJS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(OBJS) $(LIBS)

# -MMD -MP: each object's header dependencies, in $(BUILD)/*.d.
$(BUILD)/%.o: src/%.c | $(BUILD)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

# A unit binary: tests/unit/test_<module>.c, which exports unit_suite(),
# linked with the one shared main (see tests/unit/check_main.c).
$(BUILD)/check_main.o: tests/unit/check_main.c | $(BUILD)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -Itests/unit -MMD -MP -c -o $@ $<

$(BUILD)/test_%: tests/unit/test_%.c $(BUILD)/check_main.o $(LIB_OBJS) \
    | $(BUILD)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -Isrc -Itests/unit -MMD -MP \
	    $(LDFLAGS) -o $@ $< $(BUILD)/check_main.o $(LIB_OBJS) $(LIBS) \
	    $(CHECK_LIBS)

-include $(wildcard $(BUILD)/*.d)

$(BUILD):
	mkdir -p $@

unit: $(UNIT_BINS)

# The same daemon and unit tests, built with ASan and UBSan.
asan:
	$(MAKE) --no-print-directory BUILD=build/asan BIN=build/asan/$(PROG) \
	    EXTRA_CFLAGS="$(SANFLAGS)" LDFLAGS="$(SANFLAGS)" CFLAGS="-O1 -g" \
	    build/asan/$(PROG) unit

# Build, then serve in the foreground on the default port. As root, any
# missing Debian package is installed first.
run: deps-build
	$(MAKE) --no-print-directory all
	./$(BIN) $(ARGS)

# Build everything and run every test; prints "N passed, M failed".
check: deps-test
	$(MAKE) --no-print-directory all unit asan
	$(MAKE) --no-print-directory check-run

check-run:
	$(PYTHON) tests/run --bin ./$(BIN) --asan-bin build/asan/$(PROG) \
	    --unit-dir $(BUILD) --asan-unit-dir build/asan

# Install the Debian packages needed (as root), or list what is missing.
deps:
	sh contrib/deps.sh build test
deps-build:
	@sh contrib/deps.sh build
deps-test:
	@sh contrib/deps.sh build test

lint:
	mandoc -Tlint -W warning man/$(PROG).8

# Units go where systemd's pkg-config file says, with ExecStart= pointing
# at the installed binary.
UNITDIR		?= $(shell $(PKG_CONFIG) --variable=systemdsystemunitdir systemd \
		       2>/dev/null || echo /lib/systemd/system)
UNITS		 = $(wildcard systemd/*.socket systemd/*.service)

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(UNITDIR)
	install -m 755 $(BIN) $(DESTDIR)$(BINDIR)/$(PROG)
	install -m 644 man/$(PROG).8 $(DESTDIR)$(MANDIR)/man8/$(PROG).8
	for u in $(UNITS); do \
	    sed 's|/usr/local/bin/|$(BINDIR)/|g' $$u \
	        > $(DESTDIR)$(UNITDIR)/$${u#systemd/} && \
	    chmod 644 $(DESTDIR)$(UNITDIR)/$${u#systemd/} || exit 1; \
	done

# The Debian package, epmd-c_<version>_<arch>.deb in DEBDIR (default: here):
# contrib/debian staged into a scratch copy of the tree, dpkg-buildpackage
# -us -uc -b, then lintian (no error, no warning). See contrib/debian/build.sh.
DEBDIR		?= .
deb:
	sh contrib/debian/build.sh $(DEBDIR)

# libFuzzer targets for the codec and a whole connection, FUZZ_SECONDS each.
fuzz:
	$(MAKE) --no-print-directory -C tests/fuzz run

clean:
	rm -rf build $(PROG)

# Side-by-side benchmark against the real epmd (see bench/README.md).
bench: all
	$(MAKE) --no-print-directory -C bench
	$(PYTHON) bench/run --bin ./$(BIN)
	$(PYTHON) bench/restart --bin ./$(BIN)
