# Builds tests/integration/fetch/units.c with fetch's own sources (state,
# resp, account) against the build's libmail, and runs it: unit tests of
# the parts of cmd/fetch that libmail does not hold.
. "$(dirname "$0")/../lib.sh"
top=$COURRIEL_TOP
build=${COURRIEL_BUILD:-$top/build}
cc=$(sed -n 's/^CC *= *//p' "$top/config.mk" 2>/dev/null)
libs=$(sed -n 's/^LIBS_LDFLAGS *= *//p' "$top/config.mk" 2>/dev/null)
flags="-std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror"
if nm "$build/libmail.a" 2>/dev/null | grep -q '__asan_'; then
	flags="$flags -fsanitize=address,undefined -fno-sanitize-recover=undefined"
fi
# shellcheck disable=SC2086
if ! ${cc:-cc} $flags -I"$top/lib" -I"$top/cmd/fetch" -I"$top/tests/unit" \
    -o "$T/units" "$top/tests/integration/fetch/units.c" \
    "$top/cmd/fetch/state.c" "$top/cmd/fetch/resp.c" "$top/cmd/fetch/account.c" \
    "$build/libmail.a" $libs >"$T/cc.log" 2>&1; then
	cat "$T/cc.log"
	fail "fetch units: build"
	finish
fi
mkdir -p "$T/u"
"$T/units" "$T/u"
