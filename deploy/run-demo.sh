#!/usr/bin/env bash
# README command 1: installs every dependency, builds probity, starts the embedded server with
# a synthetic demo gallery (first start creates the gallery, a test issuer key, a demo warrant
# and a ledger), runs one warranted demo search against it through the real gRPC client, an
# unwarranted one that is refused, and then keeps serving until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$(nproc)" --target probity

probity=build/server/cli/probity
data_dir=${PROBITY_DEMO_DIR:-demo-data}
listen=${PROBITY_DEMO_LISTEN:-127.0.0.1:7443}
port_file=$(mktemp)
trap 'rm -f "$port_file"; [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null; true' EXIT

"$probity" serve --demo --data-dir "$data_dir" --listen "$listen" --port-file "$port_file" &
server_pid=$!

for _ in $(seq 1 600); do
  [ -s "$port_file" ] && break
  kill -0 "$server_pid" 2>/dev/null || { echo "probity serve exited early" >&2; exit 1; }
  sleep 0.5
done
[ -s "$port_file" ] || { echo "probity serve did not start in time" >&2; exit 1; }
server="127.0.0.1:$(cat "$port_file")"

echo
echo "== a warranted search of the demo gallery (probity query)"
"$probity" query --server "$server" --collection demo --warrant "$data_dir/demo-warrant.jwt" \
  --embedding "$data_dir/demo-queries.fvecs" --row 0 --k 10 \
  --justification "README demo search"

echo
echo "== the same search without a valid warrant is refused (and recorded in the ledger)"
no_warrant=$(mktemp)
echo "not-a-warrant" > "$no_warrant"
"$probity" query --server "$server" --collection demo --warrant "$no_warrant" \
  --embedding "$data_dir/demo-queries.fvecs" --row 0 --k 10 || true
rm -f "$no_warrant"

echo
echo "The demo server keeps running on $server; stop it with Ctrl-C."
wait "$server_pid"
