#!/usr/bin/env bash
# Installs what the browser tests (crates/e2e) need and nothing else: Debian's Chromium and its
# chromedriver (run as root; CI runs as root), and axe-core, the accessibility checker the tests
# inject into every page, at the version pinned in crates/e2e/axe/package-lock.json (`npm ci`).
# Each part does nothing when it is already there. The tests never download a browser of their own.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
APT_UPDATED=""
apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: apt-get not found; install $* with your package manager" >&2
    exit 1
  fi
  if [ -z "$APT_UPDATED" ]; then $SUDO apt-get update -qq; APT_UPDATED=1; fi
  $SUDO apt-get install -y -qq "$@"
}

# axe-core, the accessibility check the browser tests inject into every page, and oidc-client-ts,
# the browser-side OpenID Connect library the single-page-app test loads: pinned in
# crates/e2e/axe/package-lock.json, fetched from the npm registry (scripts, not a browser).
AXE_DIR="$(cd "$(dirname "$0")/.." && pwd)/crates/e2e/axe"
if [ ! -f "$AXE_DIR/node_modules/axe-core/axe.min.js" ] ||
  [ ! -f "$AXE_DIR/node_modules/oidc-client-ts/dist/browser/oidc-client-ts.min.js" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
  fi
  (cd "$AXE_DIR" && npm ci --no-audit --no-fund --ignore-scripts)
fi

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
apt_install chromium chromium-driver
chromium --version 2>/dev/null | tail -n1
chromedriver --version
