# Sourced by the experiment scripts in this folder (not run on its own): builds the CLI once in Release, defines
# `dslm` to run it and `train_run` to train one run into the experiment's folder while recording its wall time.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
dotnet build Cli -c Release --nologo -v quiet > /dev/null
dslm() { dotnet "$ROOT/Cli/bin/Release/net10.0/dslm.dll" "$@"; }

# experiment_folder NAME: runs/experiments/NAME, emptied, with a summary.txt that starts with the machine.
experiment_folder() {
    EXPERIMENT="runs/experiments/$1"
    rm -rf "$EXPERIMENT"
    mkdir -p "$EXPERIMENT"
    SUMMARY="$EXPERIMENT/summary.txt"
    { echo "experiment $1, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD)"
      echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average $(cut -d' ' -f1-3 /proc/loadavg)"; } | tee "$SUMMARY"
}

# train_run RUN FLAGS...: `dslm train FLAGS --out $EXPERIMENT/RUN`; the full output goes to RUN/train.log, the model
# line, the final line and the wall time to the summary.
train_run() {
    local run="$1"; shift
    local start=$SECONDS
    mkdir -p "$EXPERIMENT/$run"
    echo "$run: dslm train $*" | tee -a "$SUMMARY"
    # A diverging run may end in an error: record it and go on to the other runs rather than abort the experiment.
    local status=0
    dslm train "$@" --out "$EXPERIMENT/$run" > "$EXPERIMENT/$run/train.log" 2>&1 || status=$?
    { [ "$status" = 0 ] || echo "$run: dslm train exited with status $status: $(tail -n 1 "$EXPERIMENT/$run/train.log")"
      grep -E '^(model|done):' "$EXPERIMENT/$run/train.log" | sed "s/^/$run: /"
      echo "$run: wall time $((SECONDS - start)) s"; } | tee -a "$SUMMARY"
}
