#!/bin/sh
# Lint: functions that invite overflows or silent failures are banned from
# src/ (curl keeps a list like this).  Use snprintf, strtol/strtoll, memcpy
# with explicit sizes, a struct buf (core/buf.h) instead.
#
# Code is checked, not prose: comments, string and character literals are
# blanked out first (line numbers kept), so "never use sprintf" in a comment
# passes and a real call does not.
#
#   lint.sh              checks src/
#   lint.sh PATH...      checks those files or directories (*.c, *.h)
#   lint.sh --self-test  shows that it fails on a banned call and passes on
#                        one in a comment or a string
set -eu
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

banned_scan() {
	"$PYTHON" - "$@" <<'PY'
import os, re, sys

BANNED = ("sprintf", "vsprintf", "strcat", "strncat", "strcpy", "strncpy",
          "strtok", "sscanf", "atoi", "atol", "atoll", "gets", "system",
          "popen", "tmpnam", "mktemp")
# A call or a mention as a value; not a member (x.system, p->gets).
CALL = re.compile(r"(?<![\w.>])(" + "|".join(BANNED) + r")\s*\(")

def strip(text):
    """Comments, string and character literals become spaces; newlines stay."""
    out, i, n = [], 0, len(text)
    while i < n:
        c, d = text[i], text[i + 1] if i + 1 < n else ""
        if c == "/" and d == "*":
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
        elif c == "/" and d == "/":
            j = i
            while j < n and text[j] != "\n":
                j += 2 if text[j] == "\\" and j + 1 < n and text[j + 1] == "\n" else 1
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
        else:
            out.append(c)
            i += 1
            continue
        out.append(re.sub(r"[^\n]", " ", text[i:j]))
        i = j
    return "".join(out)

def files(paths):
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, names in os.walk(p):
                dirs.sort()
                for name in sorted(names):
                    if name.endswith((".c", ".h")):
                        yield os.path.join(root, name)
        else:
            yield p

found = 0
for path in files(sys.argv[1:]):
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    raw = text.split("\n")
    for no, line in enumerate(strip(text).split("\n"), 1):
        for m in CALL.finditer(line):
            print("%s:%d: %s: %s" % (path, no, m.group(1), raw[no - 1].strip()))
            found += 1
sys.exit(1 if found else 0)
PY
}

self_test() {
	dir=$(mktemp -d)
	trap 'rm -rf "$dir"' EXIT
	fails=0
	expect() { # expect pass|fail NAME CODE
		printf '%s\n' "$3" > "$dir/$2.c"
		if banned_scan "$dir/$2.c" > "$dir/out" 2>&1; then got=pass; else got=fail; fi
		if [ "$got" != "$1" ]; then
			echo "lint self-test: $2: expected $1, got $got" >&2
			cat "$dir/out" >&2
			fails=$((fails + 1))
		fi
	}
	expect fail call 'void f(char *d) { strcpy(d, "x"); }'
	expect fail spaced 'int f(const char *s) { return atoi (s); }'
	expect fail sscanf 'int f(const char *s, int *v) { return sscanf(s, "%d", v); }'
	expect fail strncpy 'void f(char *d, const char *s) { strncpy(d, s, 4); }'
	expect fail after_comment '/* fine */ void f(char *d) { sprintf(d, "%d", 1); }'
	expect fail after_string 'void f(char *d) { g("/*"); strcat(d, "*/"); }'
	expect pass block_comment '/* never sprintf(buf, ...) here */ int x;'
	expect pass line_comment 'int x; // strcpy(a, b) would overflow'
	expect pass multi_line_comment '/*
 * atoi(s) cannot fail
 */ int x;'
	expect pass string 'const char *s = "system(\"ls\")";'
	expect pass char_literal 'char c = '"'"'('"'"'; int gets_count(void);'
	expect pass lookalikes 'int f(char *d) { return snprintf(d, 4, "x") + vsnprintf(d, 4, "x", 0) + strtoll(d, 0, 10); }'
	expect pass member 'struct s { int (*system)(void); }; int f(struct s *p) { return p->system(); }'
	if [ "$fails" -ne 0 ]; then
		echo "lint self-test: $fails case(s) wrong" >&2
		exit 1
	fi
	echo "lint self-test: 13 passed, 0 failed"
}

if [ "${1:-}" = "--self-test" ]; then
	self_test
	exit 0
fi
[ $# -gt 0 ] || set -- src/
if ! banned_scan "$@"; then
	echo "lint: banned function used (see tests/lint.sh)" >&2
	exit 1
fi
echo "lint: 1 passed, 0 failed"
