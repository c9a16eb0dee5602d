#!/usr/bin/env bash
# The packages as a user gets them (run by .ci/run, not by npm test):
#   1. build and pack every package, and check each tarball with publint and
#      @arethetypeswrong/cli (ESM only);
#   2. in a fresh npm project outside the repository, install only those
#      tarballs plus Effect 3.x from the registry; typecheck scripts/consumer/app.ts
#      under a stock NodeNext tsconfig, run the compiled JS with plain node
#      (an IAMAT at one server is answered by WHATSAT at the other, SIGTERM
#      exits 0), and run scripts/consumer/herd.test.ts with vitest;
#   3. install the CLI tarball globally into a scratch prefix and run `herd up`
#      from an empty folder with no config: the default herd answers.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d "${TMPDIR:-/tmp}/herd-consumer-XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -rf "$scratch"
}
trap cleanup EXIT
step() { printf '\n== consumer test: %s\n' "$*"; }
fail() { printf 'consumer test: FAILED: %s\n' "$*" >&2; exit 1; }

# A line to host:port, the first reply line back (a WHATSAT answer's AT line), within 5 s.
ask() {
  node -e '
    const [host, port, line] = process.argv.slice(1)
    const socket = require("node:net").connect(Number(port), host, () => socket.write(line + "\n"))
    let text = ""
    socket.setTimeout(5000, () => { console.error("no reply"); process.exit(1) })
    socket.on("data", (chunk) => { text += chunk; if (text.includes("\n")) { console.log(text.split("\n")[0]); process.exit(0) } })
    socket.on("error", (error) => { console.error(error.message); process.exit(1) })
  ' "$@"
}

# Waits (bounded) until host:port accepts connections.
await_port() {
  for _ in $(seq 1 150); do
    if node -e 'require("node:net").connect(Number(process.argv[2]), process.argv[1]).on("connect", () => process.exit(0)).on("error", () => process.exit(1))' "$1" "$2"; then return 0; fi
    sleep 0.1
  done
  fail "nothing listening on $1:$2 after 15 s"
}

# Polls (bounded) until `ask host port line` answers a line matching the pattern.
await_answer() {
  local host=$1 port=$2 line=$3 pattern=$4 reply=""
  for _ in $(seq 1 50); do
    reply=$(ask "$host" "$port" "$line" || true)
    if [[ $reply =~ $pattern ]]; then echo "$reply"; return 0; fi
    sleep 0.1
  done
  fail "$line at $host:$port answered '$reply', expected /$pattern/"
}

# Sends SIGTERM and waits (bounded) for the exit status, which must be 0.
stop_cleanly() {
  local pid=$1 what=$2 status=0
  kill -TERM "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && fail "$what still running 10 s after SIGTERM"
  wait "$pid" || status=$?
  [[ $status -eq 0 ]] || fail "$what exited $status on SIGTERM"
  echo "$what exited 0 on SIGTERM"
}

free_port() { node -e 'const s = require("node:net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close() })'; }

step "build and pack"
(cd "$repo" && npm run build --silent)
mkdir -p "$scratch/tarballs"
libraries=(protocol store places peers server admin testkit)
for name in "${libraries[@]}" cli; do
  (cd "$repo/packages/$name" && npm pack --silent --pack-destination "$scratch/tarballs" >/dev/null)
done
ls "$scratch/tarballs"

step "publint and arethetypeswrong"
for tarball in "$scratch"/tarballs/*.tgz; do
  (cd "$repo" && npx --no-install publint --strict "$tarball" | tail -1)
done
for name in "${libraries[@]}"; do
  (cd "$repo" && npx --no-install attw --profile esm-only --format ascii "$scratch/tarballs/herd-$name-0.1.0.tgz" >/dev/null) ||
    fail "attw: @herd/$name"
  echo "attw: @herd/$name resolves for node16 (ESM) and bundlers"
done

step "a fresh project installs the tarballs and Effect 3.x"
app="$scratch/app"
mkdir -p "$app"
cp "$repo/scripts/consumer/app.ts" "$repo/scripts/consumer/herd.test.ts" "$repo/scripts/consumer/tsconfig.json" "$app/"
cd "$app"
npm init -y >/dev/null
npm pkg set type=module
# better-sqlite3 (the durable store's database) builds a native addon: npm 11 runs
# no dependency's install script unless the project's package.json allows it.
npm pkg set allowScripts.better-sqlite3=true --json
npm install --no-audit --no-fund --loglevel=error \
  $(for name in "${libraries[@]}"; do echo "$scratch/tarballs/herd-$name-0.1.0.tgz"; done) \
  effect@3 @effect/platform@0.97 @effect/platform-node@0.108 \
  typescript@5.9 @types/node@20 vitest@3.2 @effect/vitest@0.30
echo "effect $(node -p 'require("effect/package.json").version') installed from the registry"
copies=$(find node_modules -type f -path '*node_modules/effect/package.json' | wc -l)
[[ $copies -eq 1 ]] || fail "$copies copies of effect installed, expected one"

step "typecheck the app under a stock NodeNext tsconfig, run it with plain node"
npx --no-install tsc -p tsconfig.json
north=$(free_port)
south=$(free_port)
NORTH_PORT=$north SOUTH_PORT=$south node dist/app.js > app.out 2>&1 &
app_pid=$!
pids+=("$app_pid")
await_port 127.0.0.1 "$north"
await_port 127.0.0.1 "$south"
ask 127.0.0.1 "$north" "IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503"
await_answer 127.0.0.1 "$south" "WHATSAT kiwi.cs.ucla.edu 10 1" '^AT North \+[0-9]+\.[0-9]{9} kiwi\.cs\.ucla\.edu '
stop_cleanly "$app_pid" "the app"

step "a testkit test with vitest"
npx --no-install vitest run herd.test.ts

step "the CLI installed globally, herd up from an empty folder"
prefix="$scratch/global"
npm install --global --prefix "$prefix" --no-audit --no-fund --loglevel=error --allow-scripts=better-sqlite3 \
  "$scratch/tarballs/herd-cli-0.1.0.tgz"
empty="$scratch/empty"
mkdir -p "$empty"
cd "$empty"
"$prefix/bin/herd" up > up.out 2>&1 &
up_pid=$!
pids+=("$up_pid")
await_port 127.0.0.1 11800
await_port 127.0.0.1 11802
ask 127.0.0.1 11800 "IAMAT kiwi +34.068930-118.445127 1621464827.959498503"
await_answer 127.0.0.1 11802 "WHATSAT kiwi 10 1" '^AT Alford '
stop_cleanly "$up_pid" "herd up"
cat up.out

step "passed"
