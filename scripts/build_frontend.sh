#!/usr/bin/env bash
# Install the UI's pinned npm packages (package-lock.json) and build it into frontend/dist, served by Django.
set -euo pipefail
cd "$(dirname "$0")/../frontend"
# Tools that would download a browser of their own must not: the tests use Debian's chromium.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 PUPPETEER_SKIP_DOWNLOAD=1
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run build --silent
