#!/usr/bin/env bash
# helm kmirror: run helm with kmirror rewriting every image reference to your mirror.
#
#   helm kmirror [--config FILE] [--preset NAME] [--strict] template ARGS...
#       helm template ARGS, its whole output (hooks included) through kmirror
#   helm kmirror [--config FILE] [--preset NAME] [--strict] install|upgrade ARGS...
#       helm install|upgrade ARGS with kmirror as the post-renderer
#       (Helm 4: hooks included; Helm 3 never passes hooks to a post-renderer)
#   helm kmirror ARGS...      anything else: kmirror ARGS (helm kmirror < in.yaml)
#
# Helm gives plugins HELM_BIN, HELM_PLUGIN_DIR and HELM_PLUGINS, and keeps its global
# flags (-n, --kube-context, ...) for itself: the helm run here reads them back from
# HELM_NAMESPACE, HELM_KUBECONTEXT and the other HELM_* variables it inherits.
set -u

fail() {
  echo "helm kmirror: error: $*" >&2
  exit 2
}

usage() {
  sed -n '2,9s/^# \{0,1\}//p' "$0"
}

if [[ "${1:-}" == __postrender ]]; then
  # Helm 4 post-renderer started by `install|upgrade` below: Helm hides our standard
  # error, so it goes to the file that the run below shows afterwards.
  shift
  exec kmirror "$@" 2>>"${KMIRROR_PLUGIN_ERRORS:-/dev/stderr}"
fi

command -v kmirror >/dev/null 2>&1 || fail "cannot run kmirror: not found on PATH (install it: see docs/install.md in kmirror's repository)"
helm="${HELM_BIN:-helm}"

options=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --config|-c|--preset)
      [[ $# -ge 2 ]] || fail "$1 needs a value"
      options+=("$1" "$2")
      shift 2 ;;
    --config=*|--preset=*|--strict)
      options+=("$1")
      shift ;;
    *) break ;;
  esac
done

case "${1:-}" in
  ""|-h|--help|help)
    usage ;;
  template)
    rendered=$(mktemp "${TMPDIR:-/tmp}/kmirror-template.XXXXXX") || exit 1
    "$helm" "$@" >"$rendered"
    status=$?
    if [[ $status -eq 0 ]]; then
      kmirror ${options[@]+"${options[@]}"} <"$rendered"
      status=$?
    fi
    rm -f "$rendered"
    exit "$status" ;;
  install|upgrade)
    post=()
    for option in ${options[@]+"${options[@]}"}; do
      post+=(--post-renderer-args "$option")
    done
    version=$("$helm" version --template '{{.Version}}') || fail "cannot run $helm version"
    if [[ "$version" == v3.* ]]; then
      echo "helm kmirror: note: Helm 3 does not pass hooks to post-renderers: hook images are not rewritten (see kmirror's docs/helm.md)" >&2
      exec "$helm" "$@" --post-renderer "$(command -v kmirror)" ${post[@]+"${post[@]}"}
    fi
    errors=$(mktemp "${TMPDIR:-/tmp}/kmirror-postrender.XXXXXX") || exit 1
    HELM_PLUGINS="$HELM_PLUGIN_DIR/postrender${HELM_PLUGINS:+:$HELM_PLUGINS}" KMIRROR_PLUGIN_ERRORS="$errors" \
      "$helm" "$@" --post-renderer kmirror-cli-postrenderer ${post[@]+"${post[@]}"}
    status=$?
    cat "$errors" >&2
    rm -f "$errors"
    exit "$status" ;;
  *)
    exec kmirror ${options[@]+"${options[@]}"} "$@" ;;
esac
