# install-lib.sh - helpers of the install-*.sh scripts that build a server from the Go module
# proxy (sourced, not run). The script sets WHAT (what it installs, for messages) and LOG (the
# file a step's output goes to) before its first step.
prog=${0##*/}
die() { echo "$prog: ERROR: $*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1fs", b-a}'; }

step() { # step "description" cmd... ; output goes to $LOG, its tail shown on failure
  local desc=$1; shift
  local t; t=$(now)
  echo "$prog: $desc ..."
  if ! "$@" >>"$LOG" 2>&1; then
    echo "---- last 40 lines of log ----" >&2
    tail -n 40 "$LOG" >&2
    echo "------------------------------" >&2
    die "$desc failed (after $(elapsed "$t")); $WHAT was NOT installed"
  fi
  echo "$prog:   done in $(elapsed "$t")"
}
