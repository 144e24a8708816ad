#!/usr/bin/env bash
# The scale benchmark: a gallery built with the cluster build steps (train, build-shard for
# every shard, assemble), served by SERVERS `probity shard` processes, each on its own host in
# a network namespace this script creates (a veth pair into one bridge, mutual TLS between the
# router and the shard servers, as off loopback Probity requires), every shard on two servers
# (server i holds shards i and i+1 mod SERVERS), and one router; then the same shards in one
# embedded process as the reference. Prints, for bench/RESULTS.md:
#   - build: wall and CPU seconds and peak RSS of every step, vectors per CPU-second;
#   - bytes per vector on disk (the generation) and in memory (RSS of the shard servers, of the
#     embedded reference);
#   - QPS and p50/p99 at 1 / 16 / 64 clients through the router and through the reference, and
#     their ratio (the fan-out cost);
#   - faults under 16 clients: a shard server SIGKILLed, restarted (how soon the router uses it
#     again), SIGSTOPped, slowed by 200 ms (a delaying proxy: this kernel has no netem), its
#     link cut (veth down), both replicas of a shard down (with and without allow_partial), and
#     a damaged shard file refused at load;
#   - that every search the clients saw answered has its ledger entry, and `ledger verify`.
#
#   sudo bash bench/server/scale.sh WORK_DIR [BUILD_DIR]
#
# Sizes (environment): PROBITY_SCALE_VECTORS (default 20000000, dimension 128, ten images per
# synthetic identity), PROBITY_SCALE_SERVERS (16), PROBITY_SCALE_SPEC (IVF4096,PQ16),
# PROBITY_SCALE_TRAIN_SIZE (training sample, default 200000 or all), PROBITY_SCALE_NPROBE (16), PROBITY_SCALE_SECONDS (10 per measurement), PROBITY_SCALE_WORKERS
# (shard builds at once, default: the number of cores). WORK_DIR keeps the generated data and
# the built generation, so a second run skips them (delete it to rebuild). Without root (no
# network namespaces) the servers listen on loopback ports and the cut-link fault is skipped.
# Needs: probity, search_load (bench), delay_proxy (tests), openssl, python3, iproute2 (ip).
#
# Every fault has an expected outcome (no search fails while a replica is up; with both replicas
# of a shard down, allow_partial answers are all partial and the rest all fail; the restarted
# server is used again; the damaged file is refused; every answered search is in the ledger,
# which verifies). The script ends with "checks: all passed" and status 0, or names each
# failed check and exits 1, so CI runs a small version of it (tests/server/CMakeLists.txt).
set -euo pipefail

if [[ $# -lt 1 || $1 == -h || $1 == --help ]]; then
  sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
work=$(mkdir -p "$1" && cd "$1" && pwd)
build=$(cd "${2:-build}" && pwd)
vectors=${PROBITY_SCALE_VECTORS:-20000000}
servers=${PROBITY_SCALE_SERVERS:-16}
spec=${PROBITY_SCALE_SPEC:-IVF4096,PQ16}
nprobe=${PROBITY_SCALE_NPROBE:-16}
seconds=${PROBITY_SCALE_SECONDS:-10}
workers=${PROBITY_SCALE_WORKERS:-$(nproc)}
probity=$build/server/cli/probity
load=$build/bench/server/search_load
proxy_tool=$build/tests/server/delay_proxy
for tool in "$probity" "$load" "$proxy_tool"; do
  if [[ ! -x $tool ]]; then
    echo "build first: cmake --build $build --target probity search_load delay_proxy" >&2
    exit 2
  fi
done
for tool in openssl python3; do
  command -v "$tool" > /dev/null || { echo "$tool is needed" >&2; exit 2; }
done
if ((servers < 8)); then
  echo "PROBITY_SCALE_SERVERS must be at least 8 (the faults use different servers)" >&2
  exit 2
fi
umask 077
ulimit -n "$(ulimit -Hn)" 2> /dev/null || true
run=$work/run
rm -rf "$run"
mkdir -p "$run"
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
calc() { awk "BEGIN { printf \"%.2f\", $1 }"; }  # arithmetic on decimals, two places
say() { echo "$*" | tee -a "$run/results.txt"; }

# ------------------------------------------------------------------------ data and build steps
identities=$((vectors / 10))
if [[ ! -f $work/data/gallery.fbin ]]; then
  log "generating $vectors synthetic vectors (dimension 128)"
  "$probity" gen --out "$work/data" --identities "$identities" --images-per-identity 10 \
    --dim 128 --queries 1000 --ground-truth-k 10 >&2
fi
queries=$work/data/queries.fbin
generation=$work/generation
# Runs one step under GNU time's CPU and memory accounting when it is installed.
timed() {
  local name=$1
  shift
  if [[ -x /usr/bin/time ]]; then
    /usr/bin/time -f "$name wall_s %e cpu_s %U+%S peak_rss_kib %M" -a -o "$work/build-times.txt" "$@"
  else
    local start=$SECONDS
    "$@"
    echo "$name wall_s $((SECONDS - start)) cpu_s ? peak_rss_kib ?" >> "$work/build-times.txt"
  fi
}
if [[ ! -f $generation/manifest.json ]]; then
  steps=$work/build-steps
  rm -rf "$steps" "$work/build-times.txt"
  train_size=${PROBITY_SCALE_TRAIN_SIZE:-$((vectors < 200000 ? vectors : 200000))}
  log "build step 1: train $spec on $train_size vectors"
  build_start=$(date +%s.%N)
  timed train "$probity" train --input "$work/data/gallery.fbin" --spec "$spec" --metric ip \
    --shards "$servers" --train-size "$train_size" --work-dir "$steps" >&2
  log "build step 2: $servers shard builds, $workers at a time"
  # Each shard build gets its share of the cores (FAISS's OpenMP threads), as one pod per shard
  # would; more threads than cores only spin.
  OMP_NUM_THREADS=$(($(nproc) / workers > 0 ? $(nproc) / workers : 1))
  export probity steps work OMP_NUM_THREADS
  export -f timed
  seq 0 $((servers - 1)) | xargs -P "$workers" -I{} bash -c \
    'timed shard-{} "$probity" build-shard --work-dir "$steps" --shard {} >&2'
  log "build step 3: assemble"
  timed assemble "$probity" assemble --work-dir "$steps" --output "$generation" >&2
  build_end=$(date +%s.%N)
  echo "total wall_s $(calc "$build_end - $build_start")" >> "$work/build-times.txt"
  rm -rf "$steps"
fi
say "## build ($vectors vectors, dimension 128, $spec, $servers shards; $(nproc) cores)"
cat "$work/build-times.txt" | tee -a "$run/results.txt"
awk -v n="$vectors" '
  $1 != "total" { split($5, c, "+"); cpu += c[1] + c[2]; if ($7 + 0 > rss) rss = $7 }
  $1 == "total" { wall = $3 }
  END { printf "build: %.0f vectors/s wall, %.0f vectors per CPU-second, largest step peak RSS %.0f MiB\n",
        n / wall, (cpu > 0 ? n / cpu : 0), rss / 1024 }' "$work/build-times.txt" |
  tee -a "$run/results.txt"
disk_bytes=$(du -sb "$generation" | cut -f1)
say "recall (offline, \`probity eval\`, 1000 held-out queries against exact top-10):"
"$probity" eval --generation "$generation" --queries "$queries" \
  --groundtruth "$work/data/groundtruth.ibin" --gallery-labels "$work/data/gallery_labels.ibin" \
  --query-labels "$work/data/query_labels.ibin" --k 10 --nprobe 4,16,64 2> /dev/null |
  tee -a "$run/results.txt"
say "disk: generation $((disk_bytes / 1048576)) MiB, $(calc "$disk_bytes / $vectors") bytes per vector"

# ------------------------------------------------------------------------------ keys and PKI
log "keys, warrant and certificates"
"$probity" warrant keygen --out-key "$run/issuer.pem" --kid bench-1 --iss bench-authority \
  --jwks "$run/jwks.json" > /dev/null
"$probity" warrant issue --key "$run/issuer.pem" --kid bench-1 --iss bench-authority \
  --sub investigator-1 --aud probity-scale --case SCALE-1 --purpose "scale benchmark" \
  --collections faces --max-queries 1000000000 --max-k 100 --ttl 4h > "$run/warrant.jwt"
"$probity" ledger keygen --out "$run/ledger-key.pem" --name probity-scale/ledger > /dev/null
# Names and subnet from this run's process id, so that two runs (a benchmark and the CI
# test) never share a bridge, a namespace or a route. The subnet is in 198.18.0.0/15, the
# range RFC 2544 sets aside for benchmark networks, so it never shadows a real network's route.
net=psc$$
subnet=198.$((18 + ($$ / 256) % 2)).$(($$ % 256))
namespaces=0
if [[ $(id -u) == 0 ]] && command -v ip > /dev/null && ip netns add "$net-probe" 2> /dev/null; then
  ip netns del "$net-probe"
  namespaces=1
fi
san="IP:127.0.0.1"
for ((i = 0; i < servers; i++)); do san="$san,IP:$subnet.$((10 + i))"; done
(
  cd "$run"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key \
    -out ca.pem -days 1 -subj /CN=probity-scale-ca 2> /dev/null
  issue() {
    echo "$3" > "$1.ext"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$1.key" \
      -out "$1.csr" -subj "/CN=$2" 2> /dev/null
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
      -out "$1.pem" -extfile "$1.ext" 2> /dev/null
  }
  issue shard probity-shard "subjectAltName=$san"
  issue router probity-router "basicConstraints=CA:FALSE"
)

# ------------------------------------------------------------------- processes and clean-up
declare -A pids
failed_checks=()
cleanup() {
  for pid in "${pids[@]}"; do kill -CONT "$pid" 2> /dev/null || true; done
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2> /dev/null || true; done
  sleep 1
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2> /dev/null || true; done
  if ((namespaces)); then
    for ((i = 0; i < servers; i++)); do ip netns del "$net-$i" 2> /dev/null || true; done
    ip link del "$net" 2> /dev/null || true
  fi
}
trap cleanup EXIT
trap "exit 1" TERM INT  # so that a timeout or Ctrl-C also removes the namespaces
wait_port() {  # port file, process name: prints the port once the process listens
  for _ in $(seq 1 1200); do
    if [[ -s $1 ]]; then
      cat "$1"
      return 0
    fi
    if ! kill -0 "${pids[$2]}" 2> /dev/null; then
      echo "$2 exited:" >&2
      tail -5 "$run/$2.log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "$2 did not listen within 120 s" >&2
  return 1
}
rss_mib() { awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }
metrics_port() {  # a free loopback port for a metrics endpoint
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
search() {  # label, target port, client counts, more search_load options
  local label=$1 port=$2 clients=$3
  shift 3
  "$load" run --label "$label" --target "127.0.0.1:$port" --token-file "$run/warrant.jwt" --queries "$queries" \
    --collection faces --clients "$clients" --seconds "$seconds" --nprobe "$nprobe" "$@" |
    tee -a "$run/results.txt"
}
ledger_json() {  # ledger directory
  cat << EOF
"ledger": {"dir": "$1", "origin": "probity-scale/ledger", "fsync": true,
           "signing_key": "$run/ledger-key.pem"}
EOF
}

# ------------------------------------------------------------------ the embedded reference
log "reference: one embedded process holding all $servers shards"
mkdir -p "$run/embedded"
cat > "$run/embedded.json" << EOF
{"data_dir": "$run/embedded", "listen": "127.0.0.1:0", "plaintext": true,
 "deployment": "probity-scale", "jwks_file": "$run/jwks.json",
 $(ledger_json "$run/embedded/ledger"),
 "collections": [{"name": "faces", "generation_dir": "$generation"}],
 "max_in_flight": 256, "omp_threads_per_search": 1}
EOF
"$probity" serve --config "$run/embedded.json" --port-file "$run/embedded.port" \
  > "$run/embedded.log" 2>&1 &
pids[embedded]=$!
embedded_port=$(wait_port "$run/embedded.port" embedded)
say "## load ($spec, nprobe $nprobe, k 10, one query per call, $seconds s per measurement)"
say "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
search embedded "$embedded_port" 1,16,64 --receipts "$run/embedded.receipts"
embedded_rss=$(rss_mib "${pids[embedded]}")
kill -TERM "${pids[embedded]}"
wait "${pids[embedded]}" || true
unset 'pids[embedded]'
say "memory: embedded reference RSS $embedded_rss MiB, $(calc "$embedded_rss * 1048576 / $vectors") bytes per vector"
"$load" check-ledger --ledger-dir "$run/embedded/ledger" --receipts "$run/embedded.receipts" |
  sed 's/^/embedded /' | tee -a "$run/results.txt"

# -------------------------------------------------------------------- the shard servers
if ((namespaces)); then
  log "network: $servers namespaces on bridge $net ($subnet.0/24)"
  ip link add "$net" type bridge
  ip addr add "$subnet.1/24" dev "$net"
  ip link set "$net" up
  for ((i = 0; i < servers; i++)); do
    ip netns add "$net-$i"
    ip link add "$net-v$i" type veth peer name eth0 netns "$net-$i"
    ip link set "$net-v$i" master "$net" up
    ip -n "$net-$i" addr add "$subnet.$((10 + i))/24" dev eth0
    ip -n "$net-$i" link set eth0 up
    ip -n "$net-$i" link set lo up
  done
fi
start_shard() {  # server number
  local i=$1 listen="127.0.0.1:0"
  ((namespaces)) && listen="$subnet.$((10 + i)):7444"
  mkdir -p "$run/shard-$i"
  cat > "$run/shard-$i.json" << EOF
{"data_dir": "$run/shard-$i", "listen": "$listen",
 "collections": [{"name": "faces", "generation_dir": "$generation",
                  "shards": [$i, $(((i + 1) % servers))]}],
 "tls": {"cert_file": "$run/shard.pem", "key_file": "$run/shard.key",
         "client_ca_file": "$run/ca.pem", "require_client_cert": true},
 "routers": [{"name": "router", "tls_identity": "probity-router"}],
 "max_in_flight": 256, "omp_threads_per_search": 1}
EOF
  rm -f "$run/shard-$i.port"
  if ((namespaces)); then
    ip netns exec "$net-$i" "$probity" shard --config "$run/shard-$i.json" \
      --port-file "$run/shard-$i.port" > "$run/shard-$i.log" 2>&1 &
  else
    "$probity" shard --config "$run/shard-$i.json" --port-file "$run/shard-$i.port" \
      > "$run/shard-$i.log" 2>&1 &
  fi
  pids[shard-$i]=$!
}
address_of() {  # server number: the address the router dials
  if ((namespaces)); then echo "$subnet.$((10 + $1)):7444"; else echo "127.0.0.1:$(cat "$run/shard-$1.port")"; fi
}
log "starting $servers shard servers"
for ((i = 0; i < servers; i++)); do start_shard "$i"; done
for ((i = 0; i < servers; i++)); do wait_port "$run/shard-$i.port" "shard-$i" > /dev/null; done

# The faults hit different servers, spread over the deployment.
killed=$((servers / 8))               # SIGKILLed, then restarted
stopped=$((3 * servers / 8))          # SIGSTOPped
slowed=$((5 * servers / 8))           # behind the delaying proxy
cut=$((7 * servers / 8))              # its link taken down
both=$((servers / 4))                 # this server and the next both down: shard both+1 is lost
"$proxy_tool" "$(address_of $slowed)" "$run/proxy.port" 200 > "$run/proxy.log" 2>&1 &
pids[proxy]=$!
proxy_port=$(wait_port "$run/proxy.port" proxy)
shard_servers=""
for ((i = 0; i < servers; i++)); do
  address=$(address_of "$i")
  ((i == slowed)) && address="127.0.0.1:$proxy_port"
  shard_servers="$shard_servers${shard_servers:+, }\"$address\""
done
router_metrics=$(metrics_port)
mkdir -p "$run/router"
cat > "$run/router.json" << EOF
{"data_dir": "$run/router", "listen": "127.0.0.1:0", "plaintext": true,
 "deployment": "probity-scale", "jwks_file": "$run/jwks.json",
 $(ledger_json "$run/router/ledger"),
 "shard_servers": [$shard_servers],
 "shard_client_tls": {"cert_file": "$run/router.pem", "key_file": "$run/router.key",
                      "client_ca_file": "$run/ca.pem"},
 "max_in_flight": 256, "metrics": {"address": "127.0.0.1:$router_metrics"}}
EOF
"$probity" serve --config "$run/router.json" --port-file "$run/router.port" \
  > "$run/router.log" 2>&1 &
pids[router]=$!
router_port=$(wait_port "$run/router.port" router)
say "## deployment: $servers shard servers ($( ((namespaces)) && echo "each in its own network namespace, mutual TLS" || echo "loopback ports, mutual TLS")), every shard on two, one router"
search router "$router_port" 1,16,64 --receipts "$run/router.receipts"
shard_rss=0
for ((i = 0; i < servers; i++)); do shard_rss=$((shard_rss + $(rss_mib "${pids[shard-$i]}"))); done
say "memory: shard servers RSS $shard_rss MiB in all ($((shard_rss / servers)) MiB each, every vector held twice: $(calc "$shard_rss * 1048576 / (2 * $vectors)") bytes per vector per copy), router RSS $(rss_mib "${pids[router]}") MiB"
awk '$1 == "embedded" || $1 == "router" { q[$1 "," $3] = $13; p[$1 "," $3] = $15 }
  END { for (c in q) if (index(c, "router,") == 1) { split(c, a, ","); n = a[2]
          printf "fan-out: %s clients router/embedded QPS %.2fx, p50 %.2fx\n", n,
            q["router," n] / q["embedded," n], p["router," n] / p["embedded," n] } }' \
  "$run/results.txt" | sort -n -k2 | tee -a "$run/results.txt"

# --------------------------------------------------------------------------------- faults
answered_ok() {  # server number: its successful shard searches as the router counts them
  local address
  address=$(address_of "$1")
  ((namespaces == 0 || $1 != slowed)) || address="127.0.0.1:$proxy_port"
  python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())' \
    "http://127.0.0.1:$router_metrics/metrics" |
    awk -v b="backend=\"$address\"" 'index($0, "probity_shard_searches_total{") == 1 && index($0, b) && index($0, "result=\"ok\"") { print $2 }'
}
fault_phase() {  # label, seconds before the fault, fault command, undo command, search_load options
  local label=$1 before=$2 fault=$3 undo=$4
  shift 4
  search "$label" "$router_port" 16 --deadline-ms 2000 --receipts "$run/router.receipts" "$@" &
  local load_pid=$!
  sleep "$before"
  eval "$fault"
  wait "$load_pid"
  eval "$undo"
}
fault_at=$(calc "$seconds / 4")
say "## faults (16 clients, client deadline 2 s, $seconds s per phase; the fault starts $fault_at s in)"
fault_phase all-up 0 true true
fault_phase "sigkill-server-$killed" "$fault_at" "kill -KILL \${pids[shard-$killed]}" true
log "restarting server $killed"
before=$(answered_ok $killed)
search_started=$(date +%s.%N)
start_shard $killed
wait_port "$run/shard-$killed.port" "shard-$killed" > /dev/null
listening=$(date +%s.%N)
search "restart-server-$killed" "$router_port" 16 --deadline-ms 2000 --receipts "$run/router.receipts" &
load_pid=$!
used=""
for _ in $(seq 1 $((seconds * 20))); do
  now=$(answered_ok $killed)
  if [[ -n $now && $now != "${before:-0}" ]]; then
    used=$(date +%s.%N)
    break
  fi
  sleep 0.05
done
wait "$load_pid"
if [[ -n $used ]]; then
  say "restart: server $killed listening $(calc "$listening - $search_started") s after start, answering the router's searches $(calc "$used - $listening") s after it listened"
else
  say "restart: server $killed was not used again within $seconds s"
  failed_checks+=("the restarted server $killed was not used again within $seconds s")
fi
fault_phase "sigstop-server-$stopped" "$fault_at" "kill -STOP \${pids[shard-$stopped]}" "kill -CONT \${pids[shard-$stopped]}"
fault_phase "slow-200ms-server-$slowed" "$fault_at" "kill -USR1 \${pids[proxy]}" "kill -USR2 \${pids[proxy]}"
if ((namespaces)); then
  fault_phase "link-cut-server-$cut" "$fault_at" "ip link set $net-v$cut down" "ip link set $net-v$cut up"
else
  say "link-cut: skipped (no network namespaces without root)"
fi
log "both servers holding shard $((both + 1)) down"
kill -KILL "${pids[shard-$both]}" "${pids[shard-$((both + 1))]}"
sleep 1
search "both-replicas-down-partial" "$router_port" 16 --deadline-ms 2000 --allow-partial --receipts "$run/router.receipts"
search "both-replicas-down-no-partial" "$router_port" 16 --deadline-ms 2000 --receipts "$run/router.receipts"
start_shard "$both"
start_shard $((both + 1))
wait_port "$run/shard-$both.port" "shard-$both" > /dev/null
wait_port "$run/shard-$((both + 1)).port" "shard-$((both + 1))" > /dev/null
sleep 2
fault_phase "all-up-again" 0 true true

log "a damaged shard file"
damaged=$run/damaged-generation
cp -r "$generation" "$damaged"
shard_file=$(find "$damaged" -name 'shard-*.faissindex' | sort | head -1)
printf '\xff' | dd of="$shard_file" bs=1 seek=4096 conv=notrunc status=none
sed "s#$generation#$damaged#; s#\"listen\": \"[^\"]*\"#\"listen\": \"127.0.0.1:0\"#" \
  "$run/shard-0.json" > "$run/damaged.json"
if "$probity" shard --config "$run/damaged.json" --port-file "$run/damaged.port" \
  > "$run/damaged.log" 2>&1; then
  say "damaged shard file: NOT refused"
  failed_checks+=("a damaged shard file was loaded")
else
  say "damaged shard file: refused at load: $(grep -m1 -io 'sha-256[^"]*' "$run/damaged.log" || tail -1 "$run/damaged.log")"
fi
rm -rf "$damaged"

log "stopping the router; checking its ledger"
kill -TERM "${pids[router]}"
wait "${pids[router]}" || true
unset 'pids[router]'
"$load" check-ledger --ledger-dir "$run/router/ledger" --receipts "$run/router.receipts" |
  sed 's/^/router /' | tee -a "$run/results.txt" ||
  failed_checks+=("an answered search of the router has no matching ledger entry")
"$probity" ledger verify --dir "$run/router/ledger" > "$run/verify.txt" 2>&1 ||
  failed_checks+=("the router's ledger does not verify")
say "router ledger verify: $(tail -1 "$run/verify.txt")"
say "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

# ----------------------------------------------------------------------------------- checks
value() {  # label, field name: the field's value on the label's last line
  awk -v l="$1" -v f="$2" '$1 == l { for (i = 2; i < NF; i++) if ($i == f) v = $(i + 1) }
    END { print v + 0 }' "$run/results.txt"
}
expect() {  # description, arithmetic condition
  (($2)) || failed_checks+=("$1")
}
for phase in all-up "sigkill-server-$killed" "restart-server-$killed" "sigstop-server-$stopped" \
  "slow-200ms-server-$slowed" "link-cut-server-$cut" both-replicas-down-partial all-up-again; do
  ((namespaces == 0)) && [[ $phase == link-cut-* ]] && continue
  expect "$phase: searches failed while a replica of every shard was up" \
    "$(value "$phase" failed) == 0 && $(value "$phase" attempted) > 0"
done
expect "both-replicas-down-partial: an answer claimed full coverage" \
  "$(value both-replicas-down-partial partial) == $(value both-replicas-down-partial attempted)"
expect "both-replicas-down-no-partial: a search was answered without a shard" \
  "$(value both-replicas-down-no-partial failed) == $(value both-replicas-down-no-partial attempted) && $(value both-replicas-down-no-partial attempted) > 0"
if ((${#failed_checks[@]} == 0)); then
  say "checks: all passed"
else
  for failure in "${failed_checks[@]}"; do say "check FAILED: $failure"; done
  # What the router said, for a run whose machine is gone afterwards (CI).
  echo "last lines of the router's log ($run/router.log):" >&2
  grep -v '\[info\]' "$run/router.log" | tail -n 40 >&2 || true
  exit 1
fi
log "results in $run/results.txt"
