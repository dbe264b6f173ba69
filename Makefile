# courriel -- see README.md. Targets: all, install, check, check-asan, deps,
# run, bench, fuzz, clean. Output goes under $(BUILD) (default build/).

BUILD ?= build
-include config.mk

PROGS := $(notdir $(patsubst %/,%,$(wildcard cmd/*/)))
LIB_SRC := $(wildcard lib/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIBMAIL := $(BUILD)/libmail.a
UNIT_SRC := $(wildcard tests/unit/*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
BINS := $(PROGS:%=$(BUILD)/bin/%)

WARN = -Wall -Wextra -Wvla -Wformat=2 -Wshadow -Wpointer-arith -Werror
HARDEN = -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE
HARDEN_LD = -pie -Wl,-z,relro,-z,now
OPT = -O2 -g
# make check-asan sets SAN; fortify and the sanitizers do not mix.
ifdef SAN
OPT = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
HARDEN = -fPIE
endif
DEFS = -D_GNU_SOURCE -DSYSCONFDIR='"$(SYSCONFDIR)"' \
	-DLOCALSTATEDIR='"$(LOCALSTATEDIR)"' -DBINDIR='"$(PREFIX)/bin"' \
	-DSBINDIR='"$(PREFIX)/sbin"' -DPROGRAM_PREFIX='"$(PROGRAM_PREFIX)"'
ALL_CFLAGS = -std=c11 $(OPT) $(WARN) $(HARDEN) $(DEFS) -Ilib $(LIBS_CFLAGS) \
	-MMD -MP $(USER_CFLAGS)
ALL_LDFLAGS = $(HARDEN_LD) $(if $(SAN),-fsanitize=address$(comma)undefined) $(USER_LDFLAGS)
comma := ,

# Daemons go to sbin and section 8; the rest to bin.
SBIN_PROGS = smtpd-lite imapd mailctl
# A program may need more libraries: cmd/NAME/libs holds pkg-config names.
prog_libs = $(if $(wildcard cmd/$(1)/libs),$(shell pkg-config --libs $$(cat cmd/$(1)/libs)))

.PHONY: all install install-sendmail check check-asan deps run bench fuzz clean \
	configured unit

all: configured $(BINS)

config.mk:
	./configure

configured: config.mk
	@if [ -n "$(strip $(MISSING))" ]; then \
		echo "missing build dependencies:$(MISSING); run 'make deps' as root" >&2; \
		exit 1; fi

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIBMAIL): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $(LIB_OBJ)

# Objects are not intermediates to delete: keep them so a rebuild is incremental.
.SECONDARY:
.SECONDEXPANSION:
$(BUILD)/bin/%: $$(addprefix $(BUILD)/,$$(addsuffix .o,$$(basename $$(wildcard cmd/$$*/*.c)))) $(LIBMAIL)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $(filter %.o,$^) $(LIBMAIL) $(call prog_libs,$*) $(LIBS_LDFLAGS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/t.h $(LIBMAIL)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/unit $(ALL_LDFLAGS) -o $@ $< $(LIBMAIL) $(LIBS_LDFLAGS)

unit: configured $(UNIT_BIN)

# Packages to build and to test come from deps.txt (one per line).
deps:
	sh tests/deps.sh install

# check installs what is missing (on Debian as root), builds, runs every test.
check:
	@sh tests/deps.sh ensure
	@$(MAKE) --no-print-directory all unit
	@sh tests/run $(BUILD)

check-asan:
	@sh tests/deps.sh ensure
	@$(MAKE) --no-print-directory BUILD=build-asan SAN=1 all unit
	@ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		sh tests/run build-asan

run:
	@sh tests/deps.sh ensure
	@$(MAKE) --no-print-directory all
	@sh etc/run.sh $(BUILD)

bench:
	@sh tests/deps.sh ensure
	@$(MAKE) --no-print-directory all
	@sh tests/bench/run $(BUILD)

fuzz:
	@sh tests/fuzz/run

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/sbin \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(SYSCONFDIR)/courriel
	@for p in $(PROGS); do \
		case " $(SBIN_PROGS) " in *" $$p "*) d=sbin ;; *) d=bin ;; esac; \
		echo install -m 755 $(BUILD)/bin/$$p $(DESTDIR)$(PREFIX)/$$d/$(PROGRAM_PREFIX)$$p; \
		install -m 755 $(BUILD)/bin/$$p $(DESTDIR)$(PREFIX)/$$d/$(PROGRAM_PREFIX)$$p || exit 1; \
	done
	@for m in man/man*/*.[158]; do \
		[ -f "$$m" ] || continue; s=$${m#man/}; s=$${s%%/*}; b=$${m##*/}; \
		case $$b in courriel.conf.5|*.conf.5) t=$$b ;; *) t=$(PROGRAM_PREFIX)$$b ;; esac; \
		install -m 644 $$m $(DESTDIR)$(MANDIR)/$$s/$$t || exit 1; \
	done
	@for f in etc/*.conf; do \
		[ -f "$$f" ] || continue; b=$${f##*/}; \
		if [ -e $(DESTDIR)$(SYSCONFDIR)/courriel/$$b ]; then \
			install -m 644 $$f $(DESTDIR)$(SYSCONFDIR)/courriel/$$b.example; \
		else install -m 644 $$f $(DESTDIR)$(SYSCONFDIR)/courriel/$$b; fi; \
	done

# sendmail and mailq as links to mailctl, in PREFIX/sbin only (the system's
# /usr/sbin/sendmail is replaced only when PREFIX=/usr says so).
install-sendmail: install
	ln -sf $(PROGRAM_PREFIX)mailctl $(DESTDIR)$(PREFIX)/sbin/sendmail
	ln -sf $(PROGRAM_PREFIX)mailctl $(DESTDIR)$(PREFIX)/sbin/mailq

clean:
	rm -rf build build-asan build-fuzz

-include $(LIB_OBJ:.o=.d) $(wildcard $(BUILD)/cmd/*/*.d) $(UNIT_BIN:=.d)
