#!/bin/sh
# Lint: functions that invite overflows or silent failures are banned from
# src/ (curl keeps a list like this).  Use snprintf, strtol/strtoll, memcpy
# with explicit sizes instead.
set -eu
cd "$(dirname "$0")/.."
banned='\b(sprintf|vsprintf|strcat|strncat|strcpy|strtok|atoi|atol|atoll|gets|system|popen|tmpnam|mktemp)[[:space:]]*\('
if grep -rnE "$banned" src/; then
	echo "lint: banned function used (see tests/lint.sh)" >&2
	exit 1
fi
echo "lint: 1 passed, 0 failed"
