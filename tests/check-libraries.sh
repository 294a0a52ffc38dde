#!/bin/sh
# Fails if a program loads a library it should not: libsystemd (the
# notification protocol is spoken directly, docs/systemd.md) or libevent's
# all-in-one library next to libevent_core/extra (docs/benchmarks.md,
# "Memory").  Arguments: the programs.
set -eu
status=0
for prog in "$@"; do
  needed=$(readelf -d "$prog" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
  bad=$(printf '%s\n' "$needed" | grep -E '^(libsystemd|libevent-2)' || true)
  if [ -n "$bad" ]; then
    echo "$prog loads $(echo $bad)" >&2
    status=1
  fi
done
[ $status = 0 ] && echo "libraries: ok ($(echo "$needed" | wc -l) in the last program)"
exit $status
