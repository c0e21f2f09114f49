#!/usr/bin/env bash
# Runs a test program with a process limit that it cannot escape: RLIMIT_NPROC does not bind root, so as
# root the program runs as user nobody (from a private copy of it and the libraries, which nobody may read
# wherever the checkout lies). Usage: run_as_limited_user.sh NPROC LIBDIR PROGRAM ARGS...
set -euo pipefail
nproc_limit=$1 libdir=$2 program=$3
shift 3
if [ "$(id -u)" -ne 0 ]; then
  # An ordinary user: the limit counts all of this user's threads, so allow for the ones already running.
  running=$(ps -L -u "$(id -u)" --no-headers | wc -l)
  exec prlimit --nproc=$((running + nproc_limit)) env LD_LIBRARY_PATH="$libdir" "$program" "$@"
fi
copy=$(mktemp -d)
trap 'rm -rf "$copy"' EXIT
cp "$program" "$libdir"/*.so "$copy"/
chmod -R a+rX "$copy"
setpriv --reuid=65534 --regid=65534 --clear-groups prlimit --nproc="$nproc_limit" \
  env LD_LIBRARY_PATH="$copy" "$copy/$(basename "$program")" "$@"
