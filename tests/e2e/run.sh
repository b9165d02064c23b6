#!/usr/bin/env bash
# End-to-end browser tests: real PostgreSQL, the API, the Next.js dashboard and Debian's
# chromium under Playwright. `make e2e` calls this. Needs PostgreSQL on 127.0.0.1:5432 (trust
# auth), Node.js 20.9+ and free ports 8000 and 3000. Artifacts, screenshots included:
# test-artifacts/e2e/. E2E_UPDATE_DOCS_IMAGES=1 refreshes docs/dashboard*.png instead.
# Extra arguments go to pytest, e.g. tests/e2e/run.sh -k logout -x
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -x .venv/bin/python ]; then
  echo "e2e: .venv is missing; run 'make test' (or 'make migrate') once to create it" >&2
  exit 1
fi

# Debian's chromium; Playwright never downloads a browser of its own.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" -eq 0 ]; then apt_get=(apt-get); else apt_get=(sudo apt-get); fi
  "${apt_get[@]}" update
  DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y chromium
fi

if ! .venv/bin/python -c 'import playwright' 2>/dev/null; then
  .venv/bin/pip install --quiet -e '.[e2e]'
fi

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
mkdir -p test-artifacts/e2e
# The e2e database is its own (jobs_e2e); the main suite's TEST_DATABASE_URL plays no part.
exec env -u TEST_DATABASE_URL E2E=1 .venv/bin/pytest tests/e2e -m e2e -p no:randomly "$@"
