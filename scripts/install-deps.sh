#!/usr/bin/env bash
# Installs the Debian packages bilora builds against, only those missing.
# Used by `make`, `make run`, `make test` and .ci/run alike.
set -euo pipefail
pkgs=(build-essential pkg-config libopenblas-dev libcjson-dev check libsubunit-dev
      libcsv-dev libpcre2-dev libutf8proc-dev libncursesw5-dev libcurl4-openssl-dev libzip-dev zlib1g-dev
      python3 python3-venv python3-numpy python3-torch tmux)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
