#!/usr/bin/env bash
# shellcheck disable=SC2317  # the lane_* functions are called indirectly, as "lane_$name"
# The test lanes. `make test` calls `tools/lanes/run-lanes.sh test`; `make <lane>` calls it with
# one lane.
#
#   tools/lanes/run-lanes.sh lint|unit|oracle|playbook|molecule|cores|vm...
#                                           these lanes one after the other
#   tools/lanes/run-lanes.sh test           every lane: lint+unit+oracle+cores (the oldest
#                                           ansible-core of the range) at the same time, then
#                                           playbook+molecule at the same time, then vm alone (its
#                                           VMs are software-emulated: they need the CPUs to
#                                           themselves), then a summary table
# Environment:
#   PYTEST_ARGS         extra pytest arguments for unit, oracle and playbook (e.g. "-k glibc", "-n 2")
#   MOLECULE_SCENARIOS  space-separated scenario names (default: every molecule/*/molecule.yml)
#   MOLECULE_JOBS       scenarios run at once (default 2)
#   LANES_SERIAL=1      `test` runs the lanes one after the other
# Exit status: 0 only when every lane ran and passed. Logs: .cache/logs/.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
repo=$PWD
export PATH="$repo/.venv/bin:$PATH"
: "${CONTAINERS_CONF:=$repo/tools/setup/containers.conf}"
export CONTAINERS_CONF
export PY_COLORS=0 ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 NO_COLOR=1
logs=$repo/.cache/logs
mkdir -p "$logs"
lanes_known=(lint unit oracle playbook molecule cores vm)

say() { printf '%s\n' "$*"; }

# ---------------------------------------------------------------------------------------------
# lint: every check runs even when an earlier one failed; the lane fails when any did.
lane_lint() {
  local failed=() dirs=() d
  for d in plugins lifeline_drill molecule tests tools; do [ -d "$d" ] && dirs+=("$d/"); done
  check() {
    local name=$1 start=$SECONDS
    shift
    say "--- lint: $name ($*)"
    if "$@"; then
      say "--- lint: $name: ok ($((SECONDS - start))s)"
    else
      say "--- lint: $name: FAILED ($((SECONDS - start))s)"
      failed+=("$name")
    fi
  }
  check "ruff check" ruff check --no-cache "${dirs[@]}"
  check "ruff format" ruff format --check --no-cache "${dirs[@]}"
  check yamllint yamllint -s .
  check ansible-lint ansible-lint --profile production --offline
  check "collection build" ansible-galaxy collection build --force --output-path .cache/build
  check "role READMEs" python tools/docs/role-readmes.py --check
  check "antsibull-changelog lint" antsibull-changelog lint
  check galaxy-importer tools/lanes/galaxy-import.sh
  check "ansible-test sanity" tools/lanes/sanity.sh
  if [ ${#failed[@]} -gt 0 ]; then
    say "lint: failed checks: ${failed[*]}"
    return 1
  fi
}

# run_pytest DIR [SECONDS [PYTEST_ARG...]]: pytest over one directory, stopped after SECONDS when
# given (0: never); "no tests collected" (exit 5), a missing directory and a run that was stopped are
# failures.
run_pytest() {
  local dir=$1 limit=${2:-0} rc
  shift $(($# < 2 ? $# : 2))
  if [ ! -d "$dir" ]; then
    say "$dir does not exist: this lane has nothing to run, which counts as a failure"
    return 1
  fi
  # shellcheck disable=SC2086
  timeout --kill-after=60 "$limit" pytest "$dir" -q "$@" ${PYTEST_ARGS:-}
  rc=$?
  if [ "$rc" -eq 5 ]; then
    say "pytest collected no tests in $dir: this lane counts as failed"
  elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    say "pytest over $dir was stopped after ${limit}s: this lane counts as failed"
  fi
  return "$rc"
}

lane_unit() { run_pytest tests/unit; }
# The real daemons as oracles (Debian's cron in the local images): small, so it runs beside unit.
lane_oracle() { run_pytest tests/oracle; }
# The whole playbook lane runs on .venv's pinned ansible-core, whatever the caller's environment says.
# --durations: the slowest tests in the log, where the lane's time goes.
lane_playbook() { LIFELINE_ANSIBLE_CORE='' PYTEST_ARGS="--durations=15 ${PYTEST_ARGS:-}" run_pytest tests/playbook; }
# The playbook lane's smoke set (its tests marked smoke) on each older ansible-core of the supported
# range, from the environments `make ansible-cores` builds (requirements/ansible-core-X.Y.txt); the
# newest, .venv's, runs the whole playbook lane. A missing environment fails the tests.
lane_cores() {
  local txt minor failed=() txts=()
  for txt in requirements/ansible-core-*.txt; do [ -f "$txt" ] && txts+=("$txt"); done
  if [ ${#txts[@]} -eq 0 ]; then
    say "cores: no requirements/ansible-core-X.Y.txt: the range has no older release, which counts as a failure"
    return 1
  fi
  # `make test` proves the ends of the range (the oldest here, the newest in the playbook lane);
  # CORES=all (the default of `make cores`) every release between them too.
  if [ "${CORES:-all}" = oldest ]; then
    mapfile -t txts < <(printf '%s\n' "${txts[@]}" | sort -V | head -1)
  fi
  for txt in "${txts[@]}"; do
    minor=$(basename "$txt" .txt)
    minor=${minor#ansible-core-}
    say "--- cores: the smoke set on ansible-core $minor"
    LIFELINE_ANSIBLE_CORE=$minor run_pytest tests/playbook 600 -m smoke || failed+=("$minor")
  done
  [ ${#failed[@]} -eq 0 ] || { say "cores: the smoke set failed on ansible-core ${failed[*]}"; return 1; }
}
# qemu VMs (TCG) for LVM, real boots and real ssh: disks from `make vm-disks`. A VM that hangs
# must not hold CI until its own limit: the lane is stopped after VM_LANE_SECONDS.
lane_vm() { run_pytest tests/vm "${VM_LANE_SECONDS:-2400}"; }

# failures_of LOG: each failed task of a molecule log with the lines around it (the tail of a
# log shows only cleanup and destroy, which run after the failure).
failures_of() {
  grep -n -B 12 -A 40 -E '^(fatal|failed): |^ERROR!|FAILED!|unreachable: ' "$1" | head -n 200
}

# causes_of LOG: the lines of a lane's log that say what failed, short: pytest's FAILED/ERROR lines,
# a molecule task's failure line and the msg or stderr under it, a lint check's verdict.
causes_of() {
  awk '
    /^(FAILED|ERROR) / || /--- lint: .*FAILED/ || /stopped after|collected no/ { print; next }
    /(fatal|failed): \[/ { print; look = 60; take = 0; next }
    look > 0 {
      look--
      if ($0 ~ /[ -](msg|stderr): /) { print; take = 4; next }
      if (take > 0) { print; take-- }
    }' "$1" | cut -c1-300 | head -n 30
}

lane_molecule() {
  local scenarios=() s
  if [ -n "${MOLECULE_SCENARIOS:-}" ]; then
    read -r -a scenarios <<<"$MOLECULE_SCENARIOS"
    for s in "${scenarios[@]}"; do
      [ -f "molecule/$s/molecule.yml" ] || { say "molecule: no scenario molecule/$s/molecule.yml"; return 1; }
    done
  else
    for s in molecule/*/molecule.yml; do
      [ -f "$s" ] && scenarios+=("$(basename "$(dirname "$s")")")
    done
  fi
  if [ ${#scenarios[@]} -eq 0 ]; then
    say "molecule: no scenario (no molecule/*/molecule.yml): this lane counts as failed"
    return 1
  fi
  say "molecule: scenarios ${scenarios[*]}"
  if [ ${#scenarios[@]} -eq 1 ]; then
    s=${scenarios[0]}
    local start=$SECONDS
    molecule test -s "$s" 2>&1 | tee "$logs/molecule-$s.log"
    local rc=${PIPESTATUS[0]}
    say "molecule: $s $([ "$rc" -eq 0 ] && echo passed || echo FAILED) in $((SECONDS - start))s (log: .cache/logs/molecule-$s.log)"
    return "$rc"
  fi
  # Several scenarios: at most MOLECULE_JOBS at a time, each with its own log.
  local jobs=${MOLECULE_JOBS:-2} failed=() rc took
  declare -A pid_of
  for s in "${scenarios[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
    rm -f "$logs/molecule-$s.result"
    (
      start=$SECONDS
      molecule test -s "$s" >"$logs/molecule-$s.log" 2>&1
      rc=$?
      echo "$rc $((SECONDS - start))" >"$logs/molecule-$s.result"
      exit "$rc"
    ) &
    pid_of[$s]=$!
    say "molecule: $s started (log: .cache/logs/molecule-$s.log)"
  done
  for s in "${scenarios[@]}"; do
    wait "${pid_of[$s]}"
    read -r rc took <"$logs/molecule-$s.result" 2>/dev/null || { rc=255 took="?"; }
    if [ "$rc" -eq 0 ]; then
      say "molecule: $s passed in ${took}s"
    else
      failed+=("$s")
      say "molecule: $s FAILED (exit $rc) in ${took}s; what failed, then the last lines of .cache/logs/molecule-$s.log:"
      failures_of "$logs/molecule-$s.log" | sed 's/^/    /'
      tail -n 30 "$logs/molecule-$s.log" | sed 's/^/    /'
    fi
  done
  [ ${#failed[@]} -eq 0 ] || { say "molecule: failed scenarios: ${failed[*]}"; return 1; }
}

# ---------------------------------------------------------------------------------------------
# run_lane NAME: runs the lane, prints its closing banner, records "rc seconds" for the summary.
run_lane() {
  local lane=$1 start=$SECONDS rc
  say "==== lane $lane: started $(date +%H:%M:%S)"
  (
    set +e
    "lane_$lane"
  )
  rc=$?
  local took=$((SECONDS - start))
  if [ $rc -eq 0 ]; then
    say "==== lane $lane: PASSED in ${took}s"
  else
    say "==== lane $lane: FAILED (exit $rc) in ${took}s"
  fi
  echo "$rc $took" >"$logs/lane-$lane.result"
  return "$rc"
}

# Several lanes at once, each into its own log; a lane's log is printed as soon as it ends.
run_concurrently() {
  local lane pid
  declare -A lane_of
  for lane in "$@"; do
    rm -f "$logs/lane-$lane.result"
    run_lane "$lane" >"$logs/lane-$lane.log" 2>&1 &
    lane_of[$!]=$lane
    say "lane $lane started in the background (log: .cache/logs/lane-$lane.log)"
  done
  while [ ${#lane_of[@]} -gt 0 ]; do
    wait -n -p pid "${!lane_of[@]}"
    lane=${lane_of[$pid]}
    unset "lane_of[$pid]"
    cat "$logs/lane-$lane.log"
  done
}

summary() {
  local lane rc took bad=0 result
  say ""
  say "==== summary"
  printf '%-10s %-8s %8s\n' lane result time
  for lane in "$@"; do
    if [ -f "$logs/lane-$lane.result" ]; then
      read -r rc took <"$logs/lane-$lane.result"
    else
      rc=255 took=0 # the lane did not even record a result
    fi
    if [ "$rc" -eq 0 ]; then result=passed; else result=FAILED bad=$((bad + 1)); fi
    printf '%-10s %-8s %7ss\n' "$lane" "$result" "$took"
  done
  printf '%-10s %-8s %7ss\n' total "" "$((SECONDS - t0))"
  # A failed lane's log may be long and printed early: its cause is repeated here, at the end.
  for lane in "$@"; do
    [ -f "$logs/lane-$lane.log" ] || continue
    read -r rc took <"$logs/lane-$lane.result" 2>/dev/null || rc=255
    [ "$rc" -ne 0 ] || continue
    say "why $lane failed (from .cache/logs/lane-$lane.log):"
    causes_of "$logs/lane-$lane.log" | sed 's/^/    /'
  done
  if [ $bad -eq 0 ]; then say "all $# lanes passed"; else say "$bad of $# lanes FAILED"; fi
  return $((bad > 0))
}

trap 'jobs -p | xargs -r kill 2>/dev/null; exit 130' INT TERM
t0=$SECONDS
[ $# -gt 0 ] || set -- test
if [ "$1" = test ]; then
  [ $# -eq 1 ] || { say "usage: $0 test | LANE..."; exit 2; }
  for lane in "${lanes_known[@]}"; do rm -f "$logs/lane-$lane.result"; done
  if [ "${LANES_SERIAL:-0}" = 1 ]; then
    for lane in "${lanes_known[@]}"; do run_lane "$lane" 2>&1 | tee "$logs/lane-$lane.log"; done
  else
    CORES=oldest run_concurrently lint unit oracle cores
    run_concurrently playbook molecule
    run_concurrently vm
  fi
  summary "${lanes_known[@]}"
  exit $?
fi

for lane in "$@"; do
  [[ " ${lanes_known[*]} " == *" $lane "* ]] || { say "unknown lane '$lane' (lanes: ${lanes_known[*]}, or test)"; exit 2; }
done
bad=0
for lane in "$@"; do run_lane "$lane" || bad=1; done
exit $bad
