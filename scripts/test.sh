#!/usr/bin/env bash
# Install the test dependencies into .venv (and Debian's chromium for the browser tests, when it
# is missing and apt-get can install it), check the code with ruff (as configured in
# pyproject.toml), then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv requirements-dev.txt
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing Debian's chromium for the browser tests..."
  (apt-get install -y -q chromium >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; }) \
    || echo "could not install chromium: the browser tests will fail" >&2
fi
# A browser test that cannot run (no chromium) fails instead of skipping, unless the caller says
# otherwise (PANDA_CAVIAR_REQUIRE_BROWSER=0, or -m 'not browser' to leave them out).
export PANDA_CAVIAR_REQUIRE_BROWSER="${PANDA_CAVIAR_REQUIRE_BROWSER:-1}"
.venv/bin/python -m ruff check .
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" = 5 ]; then
  echo "no test ran: that is a failure" >&2
  exit 1
fi
exit "$status"
