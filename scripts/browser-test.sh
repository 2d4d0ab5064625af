#!/usr/bin/env bash
# The chat page of `llmrouter chat` in a real headless Chromium: installs what is missing
# (Debian's chromium through apt, the npm packages of tests/browser through `npm ci`), builds the
# binary, and runs tests/browser/chat.test.mjs with node's test runner. The screenshot is written
# to target/chat-page.png. Every process the test starts is stopped by it; the whole run is
# bounded by a timeout.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  echo "== apt-get install ${need[*]}"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${need[@]}"
fi

echo "== npm packages of tests/browser (puppeteer-core, pinned by package-lock.json)"
if [ ! -f tests/browser/node_modules/.package-lock.json ] \
  || [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; then
  (cd tests/browser && npm ci --no-audit --no-fund)
fi

echo "== the binary"
cargo build --quiet -p llmrouter-cli
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
export LLMROUTER_BIN="$PWD/$TARGET_DIR/debug/llmrouter"
case "$TARGET_DIR" in /*) LLMROUTER_BIN="$TARGET_DIR/debug/llmrouter" ;; esac

echo "== the chat page in headless Chromium ($(chromium --version 2>/dev/null | head -1))"
timeout 300 node --test --test-reporter=spec tests/browser/chat.test.mjs
