#!/bin/sh
# Helm 4 post-renderer: kmirror as a filter, standard input to standard output.
#
# Helm 4 never shows a post-renderer's standard error, so when kmirror fails its
# messages also go to $KMIRROR_ERROR_LOG (default:
# ${XDG_STATE_HOME:-$HOME/.local/state}/kmirror/post-renderer.log) and, on Linux,
# to Helm's own standard error when that is a terminal or a pipe.
set -u

log="${KMIRROR_ERROR_LOG:-${XDG_STATE_HOME:-$HOME/.local/state}/kmirror/post-renderer.log}"
errors=$(mktemp "${TMPDIR:-/tmp}/kmirror-postrender.XXXXXX") || exit 1

if command -v kmirror >/dev/null 2>&1; then
  kmirror "$@" 2>"$errors"
  status=$?
else
  echo "kmirror: error: cannot run kmirror: not found on PATH (install it: see docs/install.md in kmirror's repository)" >"$errors"
  status=127
fi
cat "$errors" >&2

if [ "$status" -ne 0 ]; then
  report() {
    echo "kmirror post-renderer failed (exit $status) at $(date '+%Y-%m-%dT%H:%M:%S%z') in $(pwd):"
    cat "$errors"
  }
  mkdir -p "$(dirname "$log")" 2>/dev/null && report >>"$log"
  helm_stderr="/proc/$PPID/fd/2"
  # Only a terminal or a pipe: a redirected file would be overwritten by Helm's own write.
  if [ -p "$helm_stderr" ] || [ -c "$helm_stderr" ]; then
    { report; echo "(also written to $log)"; } >"$helm_stderr" 2>/dev/null
  fi
fi
rm -f "$errors"
exit "$status"
