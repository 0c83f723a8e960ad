#!/usr/bin/env bash
# Installs what the browser tests (crates/e2e) need and nothing else: Debian's Chromium and its
# chromedriver. Run as root (CI runs as root); does nothing when both are already there.
# The tests never download a browser of their own.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: apt-get not found; install Chromium and chromedriver with your package manager" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium chromium-driver
chromium --version 2>/dev/null | tail -n1
chromedriver --version
