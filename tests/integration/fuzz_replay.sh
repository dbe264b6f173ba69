# Replays every fuzz target's seed corpus and regressions (tests/fuzz/) as a
# regression test: each target is compiled with plain cc and
# tests/fuzz/replay_main.c against the build's libmail (with the sanitizers
# when that libmail has them, as in make check-asan) and run over
# tests/fuzz/corpus/NAME/ and tests/fuzz/regressions/NAME/.
. "$(dirname "$0")/lib.sh"
top=$COURRIEL_TOP
build=${COURRIEL_BUILD:-$top/build}
lib=$build/libmail.a
out=$T/fuzz
mkdir -p "$out"
cc=$(sed -n 's/^CC *= *//p' "$top/config.mk" 2>/dev/null)
libs=$(sed -n 's/^LIBS_LDFLAGS *= *//p' "$top/config.mk" 2>/dev/null)
flags="-std=c11 -D_GNU_SOURCE -g -O1 -w"
if nm "$lib" 2>/dev/null | grep -q '__asan_'; then
	flags="$flags -fsanitize=address,undefined -fno-sanitize-recover=undefined"
fi

meta() {
	sed -n "s/.*$1:[ 	]*\\([^*]*\\).*/\\1/p" "$2" | tr '\n' ' '
}

n_targets=0
for src in "$top"/tests/fuzz/*.c; do
	[ -f "$src" ] || continue
	n=$(basename "$src" .c)
	[ "$n" = replay_main ] && continue
	n_targets=$((n_targets + 1))
	extra= incs=
	for e in $(meta fuzz-sources "$src"); do
		extra="$extra $top/$e"
		incs="$incs -I$top/$(dirname "$e")"
	done
	pk=$(meta fuzz-libs "$src")
	pklibs=
	[ -n "$(echo $pk)" ] && pklibs=$(pkg-config --cflags --libs $pk)
	# shellcheck disable=SC2086
	if ! ${cc:-cc} $flags -I"$top/lib" $incs -o "$out/$n" "$src" $extra \
	    "$top/tests/fuzz/replay_main.c" "$lib" $libs $pklibs \
	    >"$out/$n.cc.log" 2>&1; then
		fail "fuzz replay $n: does not compile"
		sed 's/^/# /' "$out/$n.cc.log" | head -20
		continue
	fi
	if res=$(ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} "$out/$n" \
	    "$top/tests/fuzz/corpus/$n" "$top/tests/fuzz/regressions/$n" \
	    2>"$out/$n.log"); then
		ok "fuzz replay $n: $res"
	else
		fail "fuzz replay $n: $res"
		sed 's/^/# /' "$out/$n.log" | head -30
	fi
done
[ "$n_targets" -gt 0 ] || ok "fuzz replay: no targets yet"
finish
