#!/usr/bin/env bash
# Installs everything Filigree needs on a fresh Debian machine with Node.js:
# the software WebGPU adapter (Mesa lavapipe through Vulkan), fonts for PNG plots,
# Fashion-MNIST from Debian, Deno from npm (pinned, in tools/deno) and the npm
# dependencies pinned in deno.lock. Safe to run again: every step is idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(mesa-vulkan-drivers libvulkan1 fonts-dejavu-core dataset-fashion-mnist)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing apt packages: ${missing[*]}" >&2
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x tools/deno/node_modules/.bin/deno ]; then
  echo "setup: installing Deno from npm (tools/deno)" >&2
  npm ci --prefix tools/deno --no-audit --no-fund >/dev/null
fi
# `deno install --frozen` fills node_modules from deno.lock and fails if the lock drifted.
tools/deno/node_modules/.bin/deno install --frozen >/dev/null
