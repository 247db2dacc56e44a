#!/usr/bin/env bash
# Installs what Gatehouse needs to build, run and test on Debian 12: apt packages, then the
# npm packages in package-lock.json. Idempotent and quiet when everything is present.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_pkgs=(
  build-essential pkg-config ca-certificates
  libmicrohttpd-dev libh2o-evloop-dev libssl-dev zlib1g-dev libuv1-dev
  libcurl4-openssl-dev libjansson-dev libjsmn-dev libsqlite3-dev sqlite3
  libsodium-dev libinih-dev libhpdf-dev libcmocka-dev
  chromium poppler-utils openssl clang libclang-rt-14-dev
)

missing=()
for p in "${apt_pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

# Node.js and npm may come from another packaging (NodeSource bundles npm inside nodejs, and
# Debian's npm package would conflict with it): ask for the commands, not the packages.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages: the SDKs used as test clients and playwright-core (it drives Debian's
# chromium; it never downloads a browser of its own).
stamp=node_modules/.gatehouse-lock
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  echo "deps: installing npm packages"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >/dev/null
  cp package-lock.json "$stamp"
fi
