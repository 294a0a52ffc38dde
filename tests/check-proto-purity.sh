#!/bin/sh
# Fails if the pure protocol core references I/O, clocks, randomness, TLS or
# the event loop. Argument: libntsproto.a
set -eu
lib=$1
bad=$(nm -u "$lib" | awk '{print $NF}' | sort -u | grep -E \
  '^(socket|bind|connect|accept|listen|recv|recvfrom|recvmsg|recvmmsg|send|sendto|sendmsg|sendmmsg|read|write|clock_gettime|gettimeofday|time|rand|random|srand|srandom|getrandom|arc4random|RAND_bytes|RAND_priv_bytes|SSL_.*|event_.*|evutil_.*|bufferevent_.*|evdns_.*)$' || true)
if [ -n "$bad" ]; then
  echo "src/proto references forbidden symbols:" >&2
  echo "$bad" >&2
  exit 1
fi
echo "proto purity: ok ($(nm -u "$lib" | awk '{print $NF}' | sort -u | wc -l) external symbols checked)"
