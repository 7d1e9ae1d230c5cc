# Shared by the encore-serve benchmark scripts (source it; set -euo pipefail is the caller's).

# release_bin ROOT: builds encore-serve and encore-train in release (ROOT/.build-release) and prints the folder
# holding them.
release_bin() {
    (cd "$1" && swift build -c release --scratch-path .build-release --product encore-serve >&2 \
        && swift build -c release --scratch-path .build-release --product encore-train >&2 \
        && swift build -c release --scratch-path .build-release --show-bin-path)
}

# wait_ready PORT PID LOG [SECONDS]: returns once GET /ready on 127.0.0.1:PORT answers 200; exits 1 when the server
# PID died (naming LOG) or is not ready within SECONDS (default 150).
wait_ready() {
    local deadline=$(( $(date +%s) + ${4:-150} ))
    until curl -fsS "http://127.0.0.1:$1/ready" >/dev/null 2>&1; do
        kill -0 "$2" 2>/dev/null || { echo "server died; see $3" >&2; exit 1; }
        [ "$(date +%s)" -lt "$deadline" ] || { echo "server not ready after ${4:-150} s; see $3" >&2; exit 1; }
        sleep 0.1
    done
}
