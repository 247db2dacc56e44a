#!/usr/bin/env bash
# Installs what Gatehouse needs to build, run and test on Debian 12: apt packages, Node.js 20
# when the system's is older, then the npm packages in package-lock.json. Idempotent and quiet
# when everything is present.
#
# Node.js: a system `node` of version 20 or newer is used as it is. Otherwise (Debian 12 ships
# 18, which the test suite and playwright-core cannot run on) the official Node.js binary is
# taken from the npm registry's `node-linux-<arch>` package into .deps/node (ignored by git);
# the Makefile puts .deps/node/bin first on PATH, so every target that runs node uses it.
# Nothing is installed outside Debian's packages and this folder.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_VERSION=20.20.2   # the Node.js taken when the system's is older than NODE_MAJOR_MIN
NODE_MAJOR_MIN=20
export PATH="$PWD/.deps/node/bin:$PATH"

apt_pkgs=(
  build-essential pkg-config ca-certificates
  libmicrohttpd-dev libh2o-evloop-dev libssl-dev zlib1g-dev libuv1-dev
  libcurl4-openssl-dev libjansson-dev libjsmn-dev libsqlite3-dev sqlite3
  postgresql libpq-dev
  libsodium-dev libinih-dev libhpdf-dev libcmocka-dev
  chromium poppler-utils openssl clang libclang-rt-14-dev procps curl
)

missing=()
for p in "${apt_pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

# Node.js and npm may come from another packaging (NodeSource bundles npm inside nodejs, and
# Debian's npm package would conflict with it): ask for the commands, not the packages. npm is
# the client that fetches a newer Node.js below, so it is needed either way.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

if [ "$(node_major)" -lt "$NODE_MAJOR_MIN" ]; then
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64) arch=arm64 ;;
    *) echo "deps: no Node.js $NODE_MAJOR_MIN package for $(uname -m); install Node.js >= $NODE_MAJOR_MIN" >&2; exit 1 ;;
  esac
  echo "deps: the system's Node.js is $(node --version 2>/dev/null || echo missing); taking $NODE_VERSION into .deps/node"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # npm checks the package's integrity against the registry's metadata.
  (cd "$tmp" && npm pack --silent "node-linux-$arch@$NODE_VERSION" >/dev/null)
  mkdir -p "$tmp/x" .deps
  tar -xzf "$tmp"/node-linux-"$arch"-*.tgz -C "$tmp/x" package/bin/node package/LICENSE
  rm -rf ".deps/node-v$NODE_VERSION"
  mkdir -p ".deps/node-v$NODE_VERSION"
  mv "$tmp/x/package/bin" "$tmp/x/package/LICENSE" ".deps/node-v$NODE_VERSION/"
  ln -sfn "node-v$NODE_VERSION" .deps/node
  hash -r
  [ "$(node_major)" -ge "$NODE_MAJOR_MIN" ] || { echo "deps: Node.js $NODE_VERSION did not run" >&2; exit 1; }
fi

# npm packages: the SDKs used as test clients and playwright-core (it drives Debian's
# chromium; it never downloads a browser of its own).
stamp=node_modules/.gatehouse-lock
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  echo "deps: installing npm packages"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >/dev/null
  cp package-lock.json "$stamp"
fi
