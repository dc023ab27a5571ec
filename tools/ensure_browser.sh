#!/usr/bin/env bash
# Make sure a Chromium for the browser tests exists; install Debian's package when we can.
# Playwright drives this system browser (its own `playwright install` downloads a browser
# build from a CDN, which many machines, CI's included, cannot reach).
set -euo pipefail
found() {
  for candidate in "${CHROMIUM:-}" chromium chromium-browser google-chrome; do
    # --version too: Ubuntu's chromium-browser package is a stub that only asks for a snap.
    if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 \
       && "$candidate" --version >/dev/null 2>&1; then
      return 0
    fi
  done
  return 1
}
found && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's chromium for the browser tests ..."
  # Then look again (on Ubuntu the package installs only that stub).
  if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
     && found; then
    exit 0
  fi
fi
echo "error: the browser tests need Chromium. Install it (Debian/Ubuntu: sudo apt-get install chromium)," \
  "or set CHROMIUM=/path/to/chrome, then run make test again." >&2
exit 1
