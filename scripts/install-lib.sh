# install-lib.sh - helpers of the install-*.sh scripts that build a server from the Go module
# proxy (sourced, not run). The script sets WHAT (what it installs, for messages) and LOG (the
# file a step's output goes to) before its first step.
prog=${0##*/}
die() { echo "$prog: ERROR: $*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1fs", b-a}'; }

# start_build NAME: starts the clock (T0) and makes the build's work dir (WORK) and LOG in it,
# removed when the script exits.
start_build() {
  T0=$(now)
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/$1-build.XXXXXX") || die "mktemp failed"
  LOG="$WORK/build.log"
  trap 'rm -rf "$WORK"' EXIT
}

# install_bin SRC BIN HAVE: installs the built SRC as BIN atomically, so that a half-written file
# never passes a script's idempotency check, and says so with its version HAVE and the time taken.
install_bin() {
  cp "$1" "$2.tmp.$$" && chmod 0755 "$2.tmp.$$" && mv -f "$2.tmp.$$" "$2" \
    || { rm -f "$2.tmp.$$"; die "cannot install to $2"; }
  echo "$prog: installed $2 ($3, $(du -h "$2" | cut -f1)) in $(elapsed "$T0") total"
}

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
