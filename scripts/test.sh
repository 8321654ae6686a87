#!/usr/bin/env bash
# The test command (README, .ci/run): installs what it needs on a fresh machine, then runs
# type-check, lint (three-zone import boundaries), unit tests under Node, the mocha suite inside a
# real VS Code (code-server) extension host, and the Playwright + Chromium UI test.
set -uo pipefail
cd "$(dirname "$0")/.."
export ONNXRUNTIME_NODE_INSTALL=skip
failed_steps=()
step() { echo; echo "=== $*"; }

step "install (npm ci)"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund || exit 1
fi

step "type-check"
npm run -s typecheck || failed_steps+=(typecheck)
step "lint"
npm run -s lint || failed_steps+=(lint)
step "build"
npm run -s build || exit 1
node esbuild.config.mjs --tests || exit 1

step "unit tests"
node scripts/run-unit.mjs | tee test-results-unit.log || failed_steps+=(unit)

step "real VS Code: install code-server, node 24, Chromium"
bash scripts/setup-e2e.sh || exit 1
step "real VS Code: mocha suite in the extension host"
node scripts/run-integration.mjs | tee test-results-integration.log || failed_steps+=(integration)
step "real VS Code: Playwright UI test"
node scripts/run-e2e.mjs | tee test-results-e2e.log || failed_steps+=(e2e)
step "real VS Code: packaged VSIX installed into code-server"
node scripts/run-vsix-e2e.mjs | tee test-results-vsix.log || failed_steps+=(vsix)

passed=0; failed=0
for f in test-results-unit.log test-results-integration.log test-results-e2e.log test-results-vsix.log; do
  line=$(grep -E '^[a-z0-9-]+: [0-9]+ passed, [0-9]+ failed' "$f" 2>/dev/null | tail -1)
  if [ -z "$line" ]; then failed=$((failed + 1)); failed_steps+=("no summary in $f"); continue; fi
  p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed.*/\1/')
  q=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed.*/\2/')
  passed=$((passed + p)); failed=$((failed + q))
done
rm -f test-results-*.log
[ ${#failed_steps[@]} -eq 0 ] || { echo "failed steps: ${failed_steps[*]}"; [ "$failed" -gt 0 ] || failed=${#failed_steps[@]}; }
echo
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ ${#failed_steps[@]} -eq 0 ]
