#!/usr/bin/env bash
# rsock benchmark: direct UDP (baseline) against the same traffic through rsock, in one run.
#
#   sudo npm run bench                 full run (< 5 min), prints the table, updates BENCHMARKS.md
#   sudo bash scripts/bench.sh --smoke a few seconds: one direct + one tunnel rate probe and a short
#                                      RTT; prints the same table; does not touch BENCHMARKS.md
#   options: --no-write (full run without updating BENCHMARKS.md), --keep (keep the logs folder)
#
# It builds two private network namespaces joined by one veth pair (MTU 1500, no router):
#   client ns 10.202.0.1/24  <-- veth -->  server ns 10.202.0.2/24
# Load comes from bench/udpload.c (compiled here with gcc -O2 into bench/build/), and from iperf3
# over kcptun. The last output line is "BENCH_JSON {...}" for machines.
#
# RSOCK_SERVER_BIN / RSOCK_CLIENT_BIN (environment) point it at other builds of the programs.
#
# Exit status: 0 numbers came out (smoke: direct and tunnel); 3 smoke: the baseline came out but
# the tunnel did not (rsock not working); 1 setup failure; 130 interrupted.
set -u
set -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ARGS_TEXT="bash scripts/bench.sh${*:+ $*}"
MODE=full WRITE=1 KEEP=0
for a in "$@"; do
  case "$a" in
    --smoke) MODE=smoke; WRITE=0 ;;
    --no-write) WRITE=0 ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench: unknown argument $a (try --help)" >&2; exit 1 ;;
  esac
done

say() { printf '[bench %5.1fs] %s\n' "$(elapsed)" "$*" >&2; }
T0=$(date +%s.%N)
elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
calc() { awk "BEGIN{ printf \"%.6g\", $* }"; }
# float comparison: fcmp "a >= b"
fcmp() { awk "BEGIN{ exit !($*) }"; }

if [[ $(id -u) -ne 0 ]]; then
  echo "bench: needs root (network namespaces, raw sockets): sudo npm run bench" >&2
  exit 1
fi
for t in ip gcc node timeout ss; do
  command -v "$t" >/dev/null || { echo "bench: missing $t (run scripts/setup.sh)" >&2; exit 1; }
done

# ---------------------------------------------------------------- names, cleanup
ID=$(printf '%04x%02x' $((RANDOM % 65536)) $((RANDOM % 256)))
NS_C="rskb-$ID-c" NS_S="rskb-$ID-s"
DEV_C="rkbc$ID" DEV_S="rkbs$ID"
IP_C=10.202.0.1 IP_S=10.202.0.2
TARGET_PORT=9000 KCP_PORT=4000 IPERF_PORT=5201 KCPL_PORT=12948 KCPL2_PORT=12949 LUDP_PORT=30000 LUDP2_PORT=30002
SPORT_BASE=40000            # app flows use source ports 40000.. (reserved in the client ns)
KEY="bench-$ID"
WORK=$(mktemp -d /tmp/rskb.XXXXXX)
RESULTS="$WORK/results.txt"
: >"$RESULTS"
PIDS=()
FGPID=
WATCHDOG=
CLEANED=0

is_alive() { # pid: running and not a zombie
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [[ -n "$st" && "$st" != Z ]]
}
stop_pid() { # pid [tenths of a second to wait before SIGKILL]; returns the exit status
  local pid=$1 n=${2:-30} i
  [[ -z "$pid" ]] && return 0
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < n; i++)); do is_alive "$pid" || break; sleep 0.1; done
  if is_alive "$pid"; then kill -KILL "$pid" 2>/dev/null; sleep 0.1; fi
  wait "$pid" 2>/dev/null
}
cleanup() {
  [[ $CLEANED == 1 ]] && return
  CLEANED=1
  trap '' INT TERM
  [[ -n "$WATCHDOG" ]] && kill "$WATCHDOG" 2>/dev/null
  [[ -n "$FGPID" ]] && kill -TERM "$FGPID" 2>/dev/null
  local p
  for p in "${PIDS[@]}"; do is_alive "$p" && kill -TERM "$p" 2>/dev/null; done
  sleep 0.3
  for p in "${PIDS[@]}"; do is_alive "$p" && kill -KILL "$p" 2>/dev/null; done
  # anything left inside our own namespaces was started by this run
  for ns in "$NS_C" "$NS_S"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  done
  ip netns del "$NS_C" 2>/dev/null
  ip netns del "$NS_S" 2>/dev/null
  if [[ $KEEP == 1 ]]; then echo "bench: logs kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT TERM

# run a command in the foreground but interruptible (the trap fires at once during `wait`)
fg() { "$@" & FGPID=$!; wait "$FGPID"; local rc=$?; FGPID=; return $rc; }
nsc() { ip netns exec "$NS_C" "$@"; }
nss() { ip netns exec "$NS_S" "$@"; }
bg_c() { local log=$1; shift; ip netns exec "$NS_C" "$@" >"$log" 2>&1 & PIDS+=($!); LASTPID=$!; }
bg_s() { local log=$1; shift; ip netns exec "$NS_S" "$@" >"$log" 2>&1 & PIDS+=($!); LASTPID=$!; }
wait_for() { # file regex tenths pid...: waits for a line; fails early if a pid dies
  local f=$1 re=$2 n=$3 i p; shift 3
  for ((i = 0; i < n; i++)); do
    grep -Eq "$re" "$f" 2>/dev/null && return 0
    for p in "$@"; do is_alive "$p" || { grep -Eq "$re" "$f" 2>/dev/null; return; }; done
    sleep 0.1
  done
  return 1
}
lastline() { # the most telling line of a log: its last error line, else its last line
  local l
  l=$(grep -Ei 'error|cannot|failed|not found' "$1" 2>/dev/null | tail -n 1)
  [[ -z "$l" ]] && l=$(grep -v '^\s*$' "$1" 2>/dev/null | tail -n 1)
  sed -E 's/^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z? +//' <<<"$l" | cut -c1-160
}

res() { echo "$1=$2" >>"$RESULTS"; }             # a figure
na() { echo "na.$1=$2" >>"$RESULTS"; }           # why a figure is missing
info() { echo "info.$1=$2" >>"$RESULTS"; }       # context for the report

# the whole run is bounded: a watchdog stops it (cleanly, through the trap) after the budget
if [[ $MODE == smoke ]]; then BUDGET=60; else BUDGET=285; fi
( trap 'kill $sp 2>/dev/null; exit 0' TERM; sleep "$BUDGET" & sp=$!; wait $sp && kill -TERM $$ 2>/dev/null ) &
WATCHDOG=$!

# ---------------------------------------------------------------- build the load tool
BUILD="$ROOT/bench/build"
UDPLOAD="$BUILD/udpload"
mkdir -p "$BUILD"
if [[ ! -x "$UDPLOAD" || "$ROOT/bench/udpload.c" -nt "$UDPLOAD" ]]; then
  gcc -O2 -Wall -o "$UDPLOAD.$$" "$ROOT/bench/udpload.c" && mv -f "$UDPLOAD.$$" "$UDPLOAD" ||
    { echo "bench: cannot compile bench/udpload.c" >&2; exit 1; }
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# ---------------------------------------------------------------- namespaces
say "namespaces $NS_C / $NS_S, logs in $WORK"
ip netns add "$NS_C" && ip netns add "$NS_S" &&
  ip link add "$DEV_C" netns "$NS_C" mtu 1500 type veth peer name "$DEV_S" netns "$NS_S" mtu 1500 &&
  ip -n "$NS_C" addr add "$IP_C/24" dev "$DEV_C" && ip -n "$NS_S" addr add "$IP_S/24" dev "$DEV_S" &&
  ip -n "$NS_C" link set lo up && ip -n "$NS_S" link set lo up &&
  ip -n "$NS_C" link set "$DEV_C" up && ip -n "$NS_S" link set "$DEV_S" up ||
  { echo "bench: cannot build the namespaces" >&2; exit 1; }
nsc sh -c "echo $SPORT_BASE-$((SPORT_BASE + 10999)) > /proc/sys/net/ipv4/ip_local_reserved_ports" 2>/dev/null

# the UDP target in the server ns: counts DATA per run, echoes pings, answers queries
bg_s "$WORK/serve.log" "$UDPLOAD" serve --bind "0.0.0.0:$TARGET_PORT" --max-seconds 900
SERVE_PID=$LASTPID
wait_for "$WORK/serve.log" '^ready' 30 "$SERVE_PID" || { echo "bench: udpload serve did not start: $(lastline "$WORK/serve.log")" >&2; exit 1; }
fg timeout 5 ip netns exec "$NS_C" "$UDPLOAD" ping --dst "$IP_S:$TARGET_PORT" --count 3 --warmup 0 --timeout-ms 300 \
  --max-seconds 3 >"$WORK/reach.out" 2>&1 || { echo "bench: $IP_S:$TARGET_PORT unreachable from the client ns" >&2; exit 1; }

# ---------------------------------------------------------------- rate probes
RUNID=$((RANDOM * 1000))
# probe ROUTE RATE SECONDS FLOWS: sets P_OK (1 if >= 99 % of the offered datagrams arrived),
# P_RATE (delivered datagrams/s), P_SENT_RATE, P_FLOWS (app flows seen at the target)
probe() {
  local route=$1 rate=$2 secs=$3 flows=$4 dst out q sent target el uniq
  RUNID=$((RUNID + 1))
  case "$route" in
    direct) dst="$IP_S:$TARGET_PORT" ;;
    tunnel:*) dst="127.0.0.1:${route#tunnel:}" ;;
    *) dst="127.0.0.1:$LUDP_PORT" ;;
  esac
  fg timeout "$(calc "$secs * 1.1 + 8")" ip netns exec "$NS_C" "$UDPLOAD" send --dst "$dst" --rate "$rate" \
    --duration "$secs" --flows "$flows" --sport-base "$SPORT_BASE" --run "$RUNID" >"$WORK/send.out" 2>&1
  sleep 0.4 # let queues drain
  fg timeout 5 ip netns exec "$NS_S" "$UDPLOAD" query --dst "127.0.0.1:$TARGET_PORT" --run "$RUNID" >"$WORK/query.out" 2>&1
  out=$(cat "$WORK/send.out") q=$(cat "$WORK/query.out")
  sent=$(sed -n 's/.*sent=\([0-9]*\).*/\1/p' <<<"$out")
  target=$(sed -n 's/.*target=\([0-9]*\).*/\1/p' <<<"$out")
  el=$(sed -n 's/.*elapsed=\([0-9.]*\).*/\1/p' <<<"$out")
  uniq=$(sed -n 's/.*uniq=\([0-9]*\).*/\1/p' <<<"$q")
  P_FLOWS=$(sed -n 's/.*flows=\([0-9]*\).*/\1/p' <<<"$q")
  : "${sent:=0}" "${target:=0}" "${el:=$secs}" "${uniq:=0}" "${P_FLOWS:=0}"
  [[ "$el" == 0* ]] && el=$secs
  P_RATE=$(calc "$uniq / $el")
  P_SENT_RATE=$(calc "$sent / $el")
  P_OK=0
  if ((target > 0)) && fcmp "$uniq >= 0.99 * $target"; then P_OK=1; fi
  printf '%s\t%s\trate=%s\tflows=%s\tsent=%s\ttarget=%s\tuniq=%s\telapsed=%s\tok=%s\t%s\n' "$(elapsed)" "$route" \
    "$rate" "$flows" "$sent" "$target" "$uniq" "$el" "$P_OK" "$(tr '\n' ' ' <<<"$q")" >>"$WORK/probes.tsv"
}

# search KEY,ROUTE,FLOWS ...: for each track, the highest offered rate that still delivers >= 99 %
# (writes res KEY). The tracks' probes are interleaved, so that they share the machine's conditions
# (it is shared and noisy): the ratios between tracks are fairer than separate searches would give.
# Per track: a flood (sender at full speed) bounds the search, then up to $steps paced probes bisect.
search() {
  local secs=2 steps=7 n=$# t step spec any
  [[ $MODE == smoke ]] && secs=1 steps=1
  local -a K R F LO HI RR BEST DONE FSEEN FLOOD
  n=0
  for spec in "$@"; do
    IFS=, read -r "K[n]" "R[n]" "F[n]" <<<"$spec"
    n=$((n + 1))
  done
  for ((t = 0; t < n; t++)); do
    probe "${R[t]}" 0 "$secs" "${F[t]}"
    FLOOD[t]=$P_RATE FSEEN[t]=$P_FLOWS LO[t]=0 BEST[t]=0 DONE[t]=0
    info "${K[t]}.flood" "$(calc "int($P_RATE)")"
    info "${K[t]}.flood_offered" "$(calc "int($P_SENT_RATE)")"
    if fcmp "$P_RATE < 1"; then
      na "${K[t]}" "no datagram arrived (${R[t]}, ${F[t]} flows)"
      say "  ${K[t]}: nothing delivered"
      DONE[t]=2
    elif [[ $P_OK == 1 ]]; then
      res "${K[t]}" "$(calc "int($P_RATE)")"
      info "${K[t]}.limit" "sender"
      say "  ${K[t]}: flood fully delivered, sender-limited at $(calc "int($P_RATE)")/s"
      DONE[t]=2
    else
      HI[t]=$P_SENT_RATE
      RR[t]=$(calc "int($P_RATE * 0.95)")
    fi
    sleep 0.3
  done
  for ((step = 0; step < steps; step++)); do
    any=0
    for ((t = 0; t < n; t++)); do
      [[ ${DONE[t]} != 0 ]] && continue
      any=1
      probe "${R[t]}" "${RR[t]}" "$secs" "${F[t]}"
      if [[ $P_OK == 1 ]]; then
        LO[t]=${RR[t]} FSEEN[t]=$P_FLOWS
        fcmp "$P_RATE > ${BEST[t]}" && BEST[t]=$P_RATE
      else
        HI[t]=${RR[t]}
      fi
      # below the first pass: step down; wide bracket: geometric middle; narrow: arithmetic middle
      if fcmp "${LO[t]} == 0"; then RR[t]=$(calc "int(${RR[t]} * 0.6)")
      elif fcmp "${HI[t]} > 2 * ${LO[t]}"; then RR[t]=$(calc "int(sqrt(${LO[t]} * ${HI[t]}))")
      else RR[t]=$(calc "int((${LO[t]} + ${HI[t]}) / 2)"); fi
      fcmp "${LO[t]} > 0 && (${HI[t]} - ${LO[t]}) / ${HI[t]} < 0.04" && DONE[t]=1
      fcmp "${RR[t]} < 100" && DONE[t]=1
      sleep 0.3
    done
    [[ $any == 0 ]] && break
  done
  for ((t = 0; t < n; t++)); do
    [[ ${DONE[t]} == 2 ]] && continue
    if fcmp "${BEST[t]} > 0"; then
      res "${K[t]}" "$(calc "int(${BEST[t]})")"
      info "${K[t]}.flows_seen" "${FSEEN[t]}"
      say "  ${K[t]}: $(calc "int(${BEST[t]})")/s (flood delivered $(calc "int(${FLOOD[t]})")/s)"
    else
      res "${K[t]}" "$(calc "int(${FLOOD[t]})")"
      info "${K[t]}.limit" "loss ≥ 1 % at every probed rate, so the figure is what the flood delivered"
      say "  ${K[t]}: >= 1 % loss at every rate; flood delivered $(calc "int(${FLOOD[t]})")/s"
    fi
  done
}

# ping ROUTE COUNT KEYPREFIX
rtt() {
  local route=$1 count=$2 pre=$3 dst out p50 p99 warm=200
  [[ $MODE == smoke ]] && warm=20
  if [[ $route == direct ]]; then dst="$IP_S:$TARGET_PORT"; else dst="127.0.0.1:$LUDP_PORT"; fi
  fg timeout 40 ip netns exec "$NS_C" "$UDPLOAD" ping --dst "$dst" --count "$count" --warmup "$warm" \
    --timeout-ms 200 --max-seconds 30 >"$WORK/ping-$route.out" 2>&1
  out=$(cat "$WORK/ping-$route.out")
  p50=$(sed -n 's/.*p50_us=\([0-9.]*\).*/\1/p' <<<"$out")
  p99=$(sed -n 's/.*p99_us=\([0-9.]*\).*/\1/p' <<<"$out")
  local samples lost
  samples=$(sed -n 's/.*samples=\([0-9]*\).*/\1/p' <<<"$out")
  lost=$(sed -n 's/.*lost=\([0-9]*\).*/\1/p' <<<"$out")
  if [[ -z "$p50" || "${samples:-0}" == 0 ]]; then
    local why="no reply to any ping ($route)"
    grep -q 'samples=' <<<"$out" || why="ping failed ($route): $(head -c 120 <<<"$out")"
    na "${pre}_p50_ms" "$why"
    na "${pre}_p99_ms" "$why"
    say "  rtt $route: no reply"
    return 1
  fi
  res "${pre}_p50_ms" "$(calc "$p50 / 1000")"
  res "${pre}_p99_ms" "$(calc "$p99 / 1000")"
  info "${pre}.samples" "$samples"
  info "${pre}.lost" "$lost"
  say "  rtt $route: p50 ${p50} us, p99 ${p99} us ($samples samples, $lost lost)"
}

# ---------------------------------------------------------------- rsock control
SERVER_BIN=${RSOCK_SERVER_BIN:-$ROOT/bin/rsock-server.js}
CLIENT_BIN=${RSOCK_CLIENT_BIN:-$ROOT/bin/rsock-client.js}
declare -A RSC RSS RSN   # per named instance: client pid, server pid, start number
RS_N=0 RS_REASON=
# rsock_start NAME PORTS TADDR LUDP_PORT: starts server then client, waits for both "ready"
rsock_start() {
  local name=$1 ports=$2 taddr=$3 ludp=$4 slog clog
  RS_N=$((RS_N + 1)) RS_REASON=
  RSN[$name]=$RS_N RSC[$name]= RSS[$name]=
  if [[ -z "${RSOCK_SERVER_BIN:-}" && ! -f "$ROOT/dist/src/cli/main.js" ]]; then RS_REASON="rsock not built (npm run build)"; return 1; fi
  slog="$WORK/rsock-server-$RS_N.log" clog="$WORK/rsock-client-$RS_N.log"
  bg_s "$slog" node "$SERVER_BIN" --dev="$DEV_S" --taddr="$taddr" --ports="$ports" --key="$KEY"
  RSS[$name]=$LASTPID
  echo "rsock-server --dev=$DEV_S --taddr=$taddr --ports=$ports --key=K" >>"$WORK/commands.txt"
  if ! wait_for "$slog" '\bready\b' 150 "${RSS[$name]}"; then
    RS_REASON="rsock-server not ready: $(lastline "$slog")"
    rsock_stop "$name"; return 1
  fi
  bg_c "$clog" node "$CLIENT_BIN" --dev="$DEV_C" --taddr="$IP_S" --ports="$ports" --ludp="127.0.0.1:$ludp" --key="$KEY"
  RSC[$name]=$LASTPID
  echo "rsock-client --dev=$DEV_C --taddr=$IP_S --ports=$ports --ludp=127.0.0.1:$ludp --key=K" >>"$WORK/commands.txt"
  if ! wait_for "$clog" '\bready\b' 150 "${RSC[$name]}" "${RSS[$name]}"; then
    RS_REASON="rsock-client not ready within 15 s: $(lastline "$clog")"
    is_alive "${RSS[$name]}" || RS_REASON="rsock-server died: $(lastline "$slog")"
    rsock_stop "$name"; return 1
  fi
  return 0
}
rsock_counters() { # NAME: makes both processes log a counters line (SIGUSR2)
  local p
  for p in "${RSC[$1]:-}" "${RSS[$1]:-}"; do [[ -n "$p" ]] && kill -USR2 "$p" 2>/dev/null; done
  sleep 0.3
}
rsock_stop() { # NAME: SIGTERM; notes a non-zero exit status, or a process that had died by itself
  local name=$1 rc pid side alive
  for side in client server; do
    if [[ $side == client ]]; then pid=${RSC[$name]:-}; else pid=${RSS[$name]:-}; fi
    [[ -z "$pid" ]] && continue
    alive=1; is_alive "$pid" || alive=0
    stop_pid "$pid" 30; rc=$?
    if [[ $alive == 0 ]]; then info "rsock_${side}_died_${RSN[$name]}" "$rc"
    elif [[ $rc != 0 ]]; then info "rsock_${side}_exit_${RSN[$name]}" "$rc"; fi
  done
  RSC[$name]= RSS[$name]=
}
rsock_ok() { [[ -n "${RSC[$1]:-}" && -n "${RSS[$1]:-}" ]] && is_alive "${RSC[$1]}" && is_alive "${RSS[$1]}"; }
cpu_ticks() { # utime+stime of a process (all threads), in clock ticks
  sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}'
}
rss_mb() { awk '/^VmRSS:/{printf "%.1f", $2 / 1024}' "/proc/$1/status" 2>/dev/null; }
hwm_mb() { awk '/^VmHWM:/{printf "%.1f", $2 / 1024}' "/proc/$1/status" 2>/dev/null; }
dev_stat() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3" 2>/dev/null || echo 0; }

na_tunnel() { # reason key...
  local why=$1 k; shift
  for k in "$@"; do na "$k" "$why"; done
}
TUNNEL_KEYS_MAIN="tunnel_rate rtt_tunnel_p50_ms rtt_tunnel_p99_ms rss_idle_client_mb rss_idle_server_mb"
[[ $MODE == full ]] && TUNNEL_KEYS_MAIN+=" cpu_us_per_dgram rss_10k_client_mb rss_10k_server_mb tunnel_rate_10k header_bytes"

# ================================================================ measurements
info mode "$MODE"
info date "$(date -u '+%Y-%m-%d %H:%M UTC')"
info kernel "$(uname -r)"
info cpu "$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo) ($(nproc) cores)"
info command "$ARGS_TEXT"
info rsock_commit "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo '+dirty')"

# ---------- session 1: rsock instance A (10 ports, 1 flow: RTT, header, CPU, idle RSS) and
# instance B (10 other ports: 10k flows), both to the counting target; every rate probe interleaved
say "direct: RTT"
if [[ $MODE == smoke ]]; then rtt direct 200 rtt_direct; else rtt direct 10000 rtt_direct; fi

say "tunnel: starting rsock A (ports 10001-10010, ludp :$LUDP_PORT)"
A_OK=0 B_OK=0
rsock_start A 10001-10010 "127.0.0.1:$TARGET_PORT" "$LUDP_PORT" && A_OK=1
A_REASON=$RS_REASON
if [[ $A_OK == 1 && $MODE == full ]]; then
  say "tunnel: starting rsock B (ports 10011-10020, ludp :$LUDP2_PORT) for the 10k-flow figures"
  rsock_start B 10011-10020 "127.0.0.1:$TARGET_PORT" "$LUDP2_PORT" && B_OK=1
  B_REASON=$RS_REASON
fi
if [[ $A_OK == 1 ]]; then
  sleep 1 # let every connection come up
  RC_A=${RSC[A]} RS_A=${RSS[A]}
  res rss_idle_client_mb "$(rss_mb "$RC_A")"
  res rss_idle_server_mb "$(rss_mb "$RS_A")"
  say "  idle RSS: client $(rss_mb "$RC_A") MiB, server $(rss_mb "$RS_A") MiB"

  say "tunnel: RTT"
  if [[ $MODE == smoke ]]; then rtt tunnel 200 rtt_tunnel; else rtt tunnel 10000 rtt_tunnel; fi

  if [[ $MODE == full ]] && command -v tcpdump >/dev/null; then
    say "tunnel: header bytes (tcpdump)"
    nss timeout 8 tcpdump -i "$DEV_S" -nn -v -l -c 20 "tcp and src host $IP_C and dst portrange 10001-10010 and greater 1200" \
      >"$WORK/tcpdump.out" 2>"$WORK/tcpdump.err" &
    TDPID=$!
    PIDS+=("$TDPID")
    wait_for "$WORK/tcpdump.err" 'listening' 30 "$TDPID"
    probe tunnel 1000 0.5 1
    sleep 0.3
    stop_pid "$TDPID" 5
    # pairs of lines: "IP (... length L_ip)" then "a > b: Flags [...], ... length L_tcp"
    read -r HB TOPT < <(awk '
      /proto TCP/ { match($0, /length [0-9]+\)/); ipl = substr($0, RSTART + 7, RLENGTH - 8) + 0; next }
      /Flags \[/ && ipl > 0 { n = split($0, f, "length "); tl = f[n] + 0;
        if (tl >= 1200 && tl < 2400 && (best == 0 || tl < best)) { best = tl; opt = ipl - 20 - 20 - tl } ipl = 0 }
      END { if (best) print best - 1200, opt; }' "$WORK/tcpdump.out")
    if [[ -n "${HB:-}" ]]; then
      res header_bytes "$HB"
      info header.tcp_options_bytes "$TOPT"
      say "  rsock header: $HB B per datagram (+ $TOPT B of TCP options)"
    else
      na header_bytes "no tunnel segment of 1200+ B captured"
    fi
  elif [[ $MODE == full ]]; then
    na header_bytes "tcpdump not installed"
  fi

  if [[ $MODE == full ]]; then
    say "tunnel: CPU per datagram at 20k/s for 5 s"
    c0=$(cpu_ticks "$RC_A") s0=$(cpu_ticks "$RS_A")
    txb0=$(dev_stat "$NS_C" "$DEV_C" tx_bytes) txp0=$(dev_stat "$NS_C" "$DEV_C" tx_packets)
    rxb0=$(dev_stat "$NS_C" "$DEV_C" rx_bytes) rxp0=$(dev_stat "$NS_C" "$DEV_C" rx_packets)
    probe tunnel 20000 5 1
    c1=$(cpu_ticks "$RC_A") s1=$(cpu_ticks "$RS_A")
    txb1=$(dev_stat "$NS_C" "$DEV_C" tx_bytes) txp1=$(dev_stat "$NS_C" "$DEV_C" tx_packets)
    rxb1=$(dev_stat "$NS_C" "$DEV_C" rx_bytes) rxp1=$(dev_stat "$NS_C" "$DEV_C" rx_packets)
    HZ=$(getconf CLK_TCK)
    DELIVERED=$(calc "int($P_RATE * 5)")
    if [[ -n "$c0" && -n "$c1" && -n "$s0" && -n "$s1" ]] && ((DELIVERED > 0)); then
      CPU_US=$(calc "(($c1 - $c0) + ($s1 - $s0)) * 1000000 / $HZ / $DELIVERED")
      res cpu_us_per_dgram "$CPU_US"
      info cpu.client_us "$(calc "($c1 - $c0) * 1000000 / $HZ / $DELIVERED")"
      info cpu.server_us "$(calc "($s1 - $s0) * 1000000 / $HZ / $DELIVERED")"
      info cpu.client_core_pct "$(calc "($c1 - $c0) * 100 / $HZ / 5")"
      info cpu.server_core_pct "$(calc "($s1 - $s0) * 100 / $HZ / 5")"
      info cpu.delivered "$DELIVERED"
      info cpu.delivered_pct "$(calc "$DELIVERED * 100 / 100000")"
      # everything on the wire, both directions (keepalives, ACKs included), per delivered datagram
      # (instance B is idle meanwhile: its keepalives are counted too, a few per second)
      info wire.bytes_per_dgram "$(calc "(($txb1 - $txb0) + ($rxb1 - $rxb0)) / $DELIVERED")"
      info wire.packets_per_dgram "$(calc "(($txp1 - $txp0) + ($rxp1 - $rxp0)) / $DELIVERED")"
      say "  CPU $(awk -v x="$CPU_US" 'BEGIN{printf "%.1f", x}') us/datagram ($DELIVERED delivered)"
    else
      na cpu_us_per_dgram "nothing delivered at 20k/s"
    fi
  fi

  if [[ $B_OK == 1 ]]; then
    say "tunnel: RSS with 10k live flows (instance B)"
    bg_c "$WORK/hold.out" "$UDPLOAD" hold --dst "127.0.0.1:$LUDP2_PORT" --flows 10000 --sport-base "$SPORT_BASE" \
      --seconds 9 --interval-ms 1000 --run 7
    HOLD=$LASTPID
    wait_for "$WORK/hold.out" 'holding=' 50 "$HOLD"
    MC=0 MS=0
    for ((i = 0; i < 7; i++)); do
      sleep 1
      a=$(rss_mb "${RSC[B]}") b=$(rss_mb "${RSS[B]}")
      fcmp "${a:-0} > $MC" && MC=$a
      fcmp "${b:-0} > $MS" && MS=$b
    done
    stop_pid "$HOLD" 10
    fg timeout 5 ip netns exec "$NS_S" "$UDPLOAD" query --dst "127.0.0.1:$TARGET_PORT" --run 7 >"$WORK/query.out" 2>&1
    HF=$(sed -n 's/.*flows=\([0-9]*\).*/\1/p' "$WORK/query.out")
    info rss_10k.flows_seen "${HF:-0}"
    if rsock_ok B && fcmp "$MC > 0"; then
      res rss_10k_client_mb "$MC"
      res rss_10k_server_mb "$MS"
      say "  RSS at 10k flows: client $MC MiB, server $MS MiB (${HF:-0} flows reached the target)"
    else
      na_tunnel "rsock died while holding 10k flows" rss_10k_client_mb rss_10k_server_mb
    fi
  elif [[ $MODE == full ]]; then
    na_tunnel "second rsock instance: $B_REASON" rss_10k_client_mb rss_10k_server_mb tunnel_rate_10k
  fi
else
  say "tunnel: n/a: $A_REASON"
  na_tunnel "$A_REASON" $TUNNEL_KEYS_MAIN
fi

TRACKS=(direct_rate,direct,1)
[[ $A_OK == 1 ]] && TRACKS+=(tunnel_rate,tunnel,1)
if [[ $MODE == full ]]; then
  [[ $B_OK == 1 ]] && TRACKS+=("tunnel_rate_10k,tunnel:$LUDP2_PORT,10000")
  TRACKS+=(direct_rate_10k,direct,10000)
fi
say "datagrams/s, probes interleaved: ${TRACKS[*]}"
search "${TRACKS[@]}"
for name in A B; do
  [[ -z "${RSC[$name]:-}" ]] && continue
  if rsock_ok "$name"; then
    info "rss_peak_client_mb_$name" "$(hwm_mb "${RSC[$name]}")"
    info "rss_peak_server_mb_$name" "$(hwm_mb "${RSS[$name]}")"
  else
    info rsock_note "an rsock process exited during the run (see its log)"
  fi
  rsock_counters "$name"
  info "counters_log_$name" "${RSN[$name]}"
  rsock_stop "$name"
done

# ---------- session 2: 1 port against 100 ports, two instances side by side, probes interleaved
if [[ $MODE == full ]]; then
  say "tunnel: --ports=10001 (ludp :$LUDP_PORT) against --ports=10101-10200 (ludp :$LUDP2_PORT)"
  if rsock_start P1 10001 "127.0.0.1:$TARGET_PORT" "$LUDP_PORT" &&
    rsock_start P100 10101-10200 "127.0.0.1:$TARGET_PORT" "$LUDP2_PORT"; then
    sleep 1.5
    search tunnel_rate_1port,tunnel,1 "tunnel_rate_100ports,tunnel:$LUDP2_PORT,1"
  else
    na tunnel_rate_1port "$RS_REASON"
    na tunnel_rate_100ports "$RS_REASON"
  fi
  rsock_stop P1
  rsock_stop P100
fi

# ---------- kcptun goodput: one kcptun-client straight to kcptun-server over UDP (port KCPL_PORT),
# one through rsock (port KCPL2_PORT); iperf3 runs alternate between them, KCP_ROUNDS rounds of both
# directions, and each figure is the mean of its rounds
KCP_ARGS=(--crypt none --nocomp --mtu 1350 --sndwnd 2048 --rcvwnd 2048 --mode fast --datashard 0 --parityshard 0 --quiet --key "kcp-$ID")
KCP_ROUNDS=2 KCP_SECS=3
declare -A KCPV KCPWHY   # per "route.dir": the rounds' Mbit/s, or why there is none
kcp_client() { # ROUTE LOCALPORT: starts a kcptun-client, waits for its TCP listener
  local route=$1 lport=$2 remote i
  if [[ $route == direct ]]; then remote="$IP_S:$KCP_PORT"; else remote="127.0.0.1:$LUDP_PORT"; fi
  bg_c "$WORK/kcpc-$route.log" kcptun-client -l "127.0.0.1:$lport" -r "$remote" "${KCP_ARGS[@]}"
  for ((i = 0; i < 30; i++)); do nsc ss -ltn "sport = :$lport" | grep -q LISTEN && return 0; sleep 0.1; done
  return 1
}
kcp_iperf() { # ROUTE LOCALPORT DIR ROUND: one iperf3 run; appends its Mbit/s to KCPV[route.dir]
  local route=$1 lport=$2 dir=$3 round=$4 args=() f bps
  [[ $dir == down ]] && args=(-R)
  f="$WORK/iperf-$route-$dir-$round"
  fg timeout $((KCP_SECS + 15)) ip netns exec "$NS_C" iperf3 -c 127.0.0.1 -p "$lport" -t "$KCP_SECS" -O 1 -J \
    --connect-timeout 3000 "${args[@]}" >"$f.json" 2>&1
  bps=$(node -e 'try{const j=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));
    const v=j.end&&j.end.sum_received&&j.end.sum_received.bits_per_second; if(v>0) console.log(v);
    else console.error(j.error||"no result")}catch(e){console.error("unreadable iperf3 output")}' "$f.json" 2>"$f.err")
  if [[ -n "$bps" ]]; then
    KCPV[$route.$dir]+=" $(calc "$bps / 1e6")"
    say "  kcptun $route $dir (round $round): $(calc "int($bps / 1e6)") Mbit/s"
  else
    KCPWHY[$route.$dir]="iperf3 through kcptun ($route): $(head -c 100 "$f.err")"
    say "  kcptun $route $dir (round $round): n/a"
  fi
  sleep 0.3
}
if [[ $MODE == full ]]; then
  if command -v kcptun-server >/dev/null && command -v iperf3 >/dev/null; then
    bg_s "$WORK/iperf3-server.log" iperf3 -s -B 127.0.0.1 -p "$IPERF_PORT"
    bg_s "$WORK/kcps.log" kcptun-server -l ":$KCP_PORT" -t "127.0.0.1:$IPERF_PORT" "${KCP_ARGS[@]}"
    ROUTES=(direct)
    say "kcptun: starting rsock K (ports 10001-10010, target kcptun-server)"
    if rsock_start K 10001-10010 "127.0.0.1:$KCP_PORT" "$LUDP_PORT"; then
      ROUTES+=(tunnel)
    else
      na kcp_tunnel_up_mbps "$RS_REASON"
      na kcp_tunnel_down_mbps "$RS_REASON"
    fi
    kcp_client direct "$KCPL_PORT" || say "  kcptun-client (direct) has no listener"
    [[ ${#ROUTES[@]} == 2 ]] && { kcp_client tunnel "$KCPL2_PORT" || say "  kcptun-client (tunnel) has no listener"; }
    sleep 1
    say "kcptun goodput, runs alternating: ${ROUTES[*]}"
    for ((round = 1; round <= KCP_ROUNDS; round++)); do
      for dir in up down; do
        for route in "${ROUTES[@]}"; do
          if [[ $route == direct ]]; then kcp_iperf direct "$KCPL_PORT" "$dir" "$round"
          else kcp_iperf tunnel "$KCPL2_PORT" "$dir" "$round"; fi
        done
      done
    done
    for route in "${ROUTES[@]}"; do
      for dir in up down; do
        v=${KCPV[$route.$dir]:-}
        if [[ -n "${v// /}" ]]; then
          res "kcp_${route}_${dir}_mbps" "$(awk '{s = 0; for (i = 1; i <= NF; i++) s += $i; printf "%.6g", s / NF}' <<<"$v")"
          info "kcp_${route}_${dir}.rounds" "$(sed 's/^ *//' <<<"$v")"
        else
          na "kcp_${route}_${dir}_mbps" "${KCPWHY[$route.$dir]:-no result}"
        fi
      done
    done
    rsock_stop K
  else
    for k in kcp_direct_up_mbps kcp_direct_down_mbps kcp_tunnel_up_mbps kcp_tunnel_down_mbps; do
      na "$k" "kcptun or iperf3 not installed"
    done
  fi
fi

# ---------------------------------------------------------------- report
say "done"
for n in $(sed -n 's/^info\.counters_log_\(.\)=\([0-9]*\)$/\1:\2/p' "$RESULTS"); do
  for side in client server; do
    f="$WORK/rsock-$side-${n#*:}.log"
    [[ -f "$f" ]] && grep -m1 -E 'counters:' "$f" | cut -c1-400 | sed "s|^|info.counters_rsock-$side-${n%%:*}=|" >>"$RESULTS"
  done
done
cp "$WORK/probes.tsv" "$WORK/probes.keep" 2>/dev/null
REPORT_ARGS=("$RESULTS")
[[ $WRITE == 1 ]] && REPORT_ARGS+=(--write "$ROOT/BENCHMARKS.md" --probes "$WORK/probes.tsv" --commands "$WORK/commands.txt")
node "$ROOT/bench/report.js" "${REPORT_ARGS[@]}"
RC=$?
if [[ $RC == 0 && $MODE == smoke ]]; then
  grep -q '^direct_rate=' "$RESULTS" && grep -q '^rtt_direct_p50_ms=' "$RESULTS" || RC=1
  if [[ $RC == 0 ]]; then grep -q '^tunnel_rate=' "$RESULTS" && grep -q '^rtt_tunnel_p50_ms=' "$RESULTS" || RC=3; fi
fi
exit $RC
