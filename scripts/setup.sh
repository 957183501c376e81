#!/usr/bin/env bash
# Installs and builds everything rsock and its tests need. Idempotent; fast when all is in place.
# Run as root (it installs Debian packages and links rsock-server/rsock-client into /usr/local/bin).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)
say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces, raw sockets, apt-get). Try: sudo npm test"
command -v node >/dev/null || die "node is not installed (Node.js >= 20 is required)"
command -v npm >/dev/null || die "npm is not installed"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "Node.js >= 20 is required, found $(node -v)"

# 1. Debian packages: build (libpcap, libsodium, cmake, g++) and tests (the rest; tshark,
#    libndpi-bin, tcpreplay, curl and openssl for the disguise, replay and probe tests; dnsmasq-base
#    and bind9-dnsutils (dig) for the DNS test; systemd for systemd-analyze, util-linux for setpriv,
#    prometheus for promtool, which checks the metrics).
packages=(libpcap-dev libsodium-dev cmake g++ make iptables nftables ethtool tcpdump
  iproute2 kcptun iperf3 conntrack hping3 sockperf socat procps tshark libndpi-bin tcpreplay curl openssl
  wireguard-go wireguard-tools iputils-ping dnsmasq-base bind9-dnsutils systemd util-linux prometheus)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q || die "apt-get update failed"
  apt-get install -y -q "${missing[@]}" || die "apt-get install failed for: ${missing[*]}"
else
  say "Debian packages present"
fi

# 2. npm dependencies. --ignore-scripts: the addon is built explicitly in step 3, with its own message.
stamp=node_modules/.package-lock.json
if [ -f package-lock.json ]; then
  if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
    say "npm ci"
    npm ci --ignore-scripts --no-audit --no-fund || die "npm ci failed"
    touch "$stamp"
  else
    say "node_modules up to date"
  fi
elif [ ! -d node_modules ] || [ package.json -nt "$stamp" ]; then
  say "npm install (no package-lock.json)"
  npm install --ignore-scripts --no-audit --no-fund || die "npm install failed"
  touch "$stamp"
else
  say "node_modules present"
fi

# 3. Native addon: rebuild when missing or older than native/ or CMakeLists.txt.
addon=build/Release/rsock_native.node
ls native/*.cc >/dev/null 2>&1 || die "no native/*.cc sources: cannot build the addon"
if [ ! -f "$addon" ] || [ -n "$(find native CMakeLists.txt package.json -newer "$addon" -print -quit)" ]; then
  say "building the native addon (cmake-js)"
  npx --no-install cmake-js compile --out build || die "native addon build failed"
  [ -f "$addon" ] || die "cmake-js finished but $addon is missing"
  touch "$addon"
else
  say "native addon up to date"
fi

# 4. TypeScript: compile src/, test/ and bench/ into dist/ when any input changed (or a file was removed:
#    dist/ is rebuilt from scratch so no stale test file runs).
ts_list=$( { find src test bench -name '*.ts' 2>/dev/null; echo tsconfig.json package.json; } | LC_ALL=C sort)
ts_stamp=dist/.build-inputs
if [ ! -f "$ts_stamp" ] || [ "$(cat "$ts_stamp")" != "$ts_list" ] || [ -n "$( { find src test tsconfig.json package.json -newer "$ts_stamp" -print -quit; find bench -name '*.ts' -newer "$ts_stamp" -print -quit; } )" ]; then
  say "compiling TypeScript (tsc -p .)"
  rm -rf dist
  npx --no-install tsc -p . || die "TypeScript compilation failed"
  printf '%s\n' "$ts_list" >"$ts_stamp"
else
  say "dist/ up to date"
fi

# 5. Commands on PATH: symlinks (works offline, no npm global prefix involved). Node resolves the
#    symlink, so bin/*.js still find dist/ next to them.
for b in rsock-server rsock-client; do
  target="$repo/bin/$b.js"
  [ -f "$target" ] || die "$target is missing"
  chmod +x "$target"
  if [ "$(readlink /usr/local/bin/$b 2>/dev/null)" != "$target" ]; then
    ln -sfn "$target" "/usr/local/bin/$b"
    say "linked /usr/local/bin/$b -> $target"
  fi
  /usr/local/bin/$b --help >/dev/null 2>&1 || die "/usr/local/bin/$b --help failed"
  [ "$(command -v $b)" = "/usr/local/bin/$b" ] || say "warning: /usr/local/bin is not on this PATH; $b is at /usr/local/bin/$b"
done
say "ready: $(command -v rsock-server) $(command -v rsock-client)"
