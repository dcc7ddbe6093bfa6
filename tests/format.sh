#!/bin/sh
# Format check: every C file of src/ and tests/ is as clang-format (with the
# checked-in .clang-format) would write it.
#
#   format.sh          lists the files that differ, exit 1 if any does
#   format.sh --fix    rewrites them in place
set -eu
cd "$(dirname "$0")/.."
CF=${CLANG_FORMAT:-clang-format}
if ! command -v "$CF" >/dev/null 2>&1; then
	echo "format.sh: $CF not found (apt-get install clang-format)" >&2
	exit 1
fi
files=$(find src tests -name '*.[ch]' -not -path 'tests/fuzz/corpus/*' | sort)
if [ "${1:-}" = "--fix" ]; then
	# shellcheck disable=SC2086
	"$CF" -i --style=file $files
	exit 0
fi
bad=0
for f in $files; do
	if ! "$CF" --style=file "$f" | cmp -s - "$f"; then
		echo "format.sh: $f is not formatted (tests/format.sh --fix)"
		bad=1
	fi
done
exit $bad
