# Shared by the top-level, tests/fuzz and bench Makefiles: one warning
# list, and how the libraries are found (pkg-config only, never a package
# manager).
#
# SYSTEMD=auto (default) uses libsystemd when pkg-config finds it;
# SYSTEMD=yes requires it; SYSTEMD=no builds without it.

PKG_CONFIG	?= pkg-config
SYSTEMD		?= auto

WARNFLAGS	 = -std=c11 -Wall -Wextra -Werror -Wshadow -Wpointer-arith \
		   -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
		   -Wundef -Wvla -Wwrite-strings -Wmissing-declarations \
		   -Wcast-align -Wcast-qual -Wnull-dereference

HAVE_LIBSYSTEMD	:= $(shell $(PKG_CONFIG) --exists libsystemd 2>/dev/null && echo yes)
ifeq ($(SYSTEMD),no)
WITH_SYSTEMD	 =
else ifeq ($(SYSTEMD),yes)
WITH_SYSTEMD	 = yes
else
WITH_SYSTEMD	 = $(HAVE_LIBSYSTEMD)
endif

DEPS		 = libevent_core libevent_extra
ifeq ($(WITH_SYSTEMD),yes)
DEPS		+= libsystemd
DEP_CPPFLAGS	 = -DHAVE_SYSTEMD=1
endif
DEP_CFLAGS	 = $(DEP_CPPFLAGS) $(shell $(PKG_CONFIG) --cflags $(DEPS))
DEP_LIBS	 = $(shell $(PKG_CONFIG) --libs $(DEPS))
