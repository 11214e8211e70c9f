#!/usr/bin/env bash
# Mutation testing (mutmut 3.8.1, the `dev` extra) of the modules whose bugs cost most:
# each module is mutated alone and judged by ITS OWN unit tests only, so a score says how
# well those tests pin that module down, not what some system test happens to touch.
#
#   scripts/mutation.sh                 every module below, one after the other
#   scripts/mutation.sh decider outbox  only these
#
# Not in CI: 15-25 minutes for all on two shared cores, most of it the windower, whose
# tests wait on real time (docs/reliability.md has the times per module). One module runs at a time, on one core (--max-children), capped at
# MUTATION_CAP_SECONDS (default 900); a capped run reports what it reached. Each module
# runs in its own scratch copy under MUTATION_WORK (default /tmp/edge-asd-mutation), so
# the working tree is never touched; list the survivors there with
# `cd $MUTATION_WORK/<module> && mutmut results`, show one with `mutmut show <name>`.
#
# Prints one line per module: killed / total, the score, the survivors and the seconds.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
work=${MUTATION_WORK:-/tmp/edge-asd-mutation}
cap_seconds=${MUTATION_CAP_SECONDS:-900}
python=${PYTHON:-python3}
mutmut=${MUTMUT:-mutmut}

# module name -> "source file:its unit tests (space separated)"
declare -A modules=(
    [decider]="edge_asd/decider.py:tests/unit/edge_asd/test_decider.py tests/unit/edge_asd/test_decider_properties.py"
    [outbox]="edge_asd/mqtt/outbox.py:tests/unit/edge_asd/mqtt/test_outbox.py"
    [ringbuffer]="edge_asd/capture/ringbuffer.py:tests/unit/edge_asd/capture/test_ringbuffer.py tests/unit/edge_asd/capture/test_ringbuffer_properties.py"
    [windower]="edge_asd/capture/windower.py:tests/unit/edge_asd/capture/test_windower.py"
    [threshold]="edge_asd/calibration/threshold.py:tests/unit/edge_asd/calibration/test_threshold.py"
    [knn]="edge_asd/scoring/knn.py:tests/unit/edge_asd/scoring/test_knn.py"
    [twfr]="edge_asd/scoring/twfr.py:tests/unit/edge_asd/scoring/test_twfr.py"
    [section]="edge_asd/scoring/section.py:tests/unit/edge_asd/scoring/test_section.py"
    [detector]="edge_asd/scoring/detector.py:tests/unit/edge_asd/scoring/test_detector.py"
)
order=(decider outbox ringbuffer windower threshold knn twfr section detector)

# The module's settings are appended to [tool.mutmut], which must be pyproject's last table.
last_table=$(grep -E '^\[' "$repo/pyproject.toml" | tail -n 1)
if [[ $last_table != "[tool.mutmut]" ]]; then
    echo "mutation.sh: [tool.mutmut] must be the last table of pyproject.toml" >&2
    exit 2
fi

toml_list() {  # words -> a TOML list of strings
    local out="" word
    for word in "$@"; do out+="\"$word\", "; done
    echo "[${out%, }]"
}

run_module() {
    local name=$1 spec=${modules[$1]:-}
    if [[ -z $spec ]]; then
        echo "mutation.sh: unknown module '$name' (known: ${order[*]})" >&2
        return 2
    fi
    local source=${spec%%:*} tests=${spec#*:} dir="$work/$name"
    rm -rf "$dir" && mkdir -p "$dir"
    cp -r "$repo/edge_asd" "$repo/tests" "$repo/pyproject.toml" "$dir/"
    find "$dir" -name __pycache__ -prune -exec rm -rf {} +
    # shellcheck disable=SC2086  # the tests are words
    {
        echo "only_mutate = $(toml_list "$source")"
        echo "pytest_add_cli_args_test_selection = $(toml_list $tests)"
    } >>"$dir/pyproject.toml"
    local start=$SECONDS status=0
    # PYTHONPATH unset: the mutated copy (pytest's pythonpath ".") must win over the tree
    (cd "$dir" && env -u PYTHONPATH timeout "$cap_seconds" "$mutmut" run --max-children 1 \
        >"$dir/run.log" 2>&1) || status=$?
    local seconds=$((SECONDS - start)) note=""
    if [[ $status == 124 ]]; then
        note=" (stopped at the ${cap_seconds} s cap: a partial score)"
    elif [[ $status != 0 ]]; then
        echo "$name: mutmut failed ($status), see $dir/run.log" >&2
        return 1
    fi
    (cd "$dir" && "$mutmut" export-cicd-stats >/dev/null)
    "$python" - "$dir/mutants/mutmut-cicd-stats.json" "$name" "$seconds" "$note" <<'EOF'
import json, sys

path, name, seconds, note = sys.argv[1:]
stats = json.load(open(path))
killed = stats["killed"] + stats["timeout"]
total = stats["total"] - stats["skipped"]
score = 100.0 * killed / total if total else 0.0
print(f"{name}: {killed}/{total} killed, {score:.1f} %, {stats['survived']} survived, "
      f"{stats['no_tests']} without a test, {seconds} s{note}")
EOF
}

selected=("$@")
[[ ${#selected[@]} == 0 ]] && selected=("${order[@]}")
for name in "${selected[@]}"; do
    run_module "$name"
done
