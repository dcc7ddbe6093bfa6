#!/bin/sh
# Test hook: appends the delivery id to $OUT_FILE (one short O_APPEND write
# per run, so concurrent runs do not interleave).
printf '%s\n' "$RUNBRIDGE_DELIVERY_ID" >> "${OUT_FILE:?}"
