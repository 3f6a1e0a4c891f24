#!/usr/bin/env bash
# Runs every Go fuzz target, one target per `go test` invocation (go allows
# one -fuzz target at a time), and stops at the first failure. A failing
# input is written under the package's testdata/fuzz/<Target>/: commit it
# with the fix.
#
# Each target runs a fixed number of inputs, sized to about 10 s on the
# 2-core CI machine. A count rather than a duration: with a duration
# (-fuzztime 10s), go1.26's fuzzing coordinator can fail a target that
# found nothing with "context deadline exceeded" when the deadline races a
# busy worker (go.dev/issue/75804, fixed in go1.27); a count has no
# deadline to race.
#
#   bash scripts/fuzz.sh                 # every target, its default count
#   FUZZTIME=1m bash scripts/fuzz.sh     # every target for a minute instead
#   FUZZTIME=500x bash scripts/fuzz.sh   # every target for 500 inputs
set -euo pipefail

cd "$(dirname "$0")/.."

# package target inputs. source/file's FuzzFlatten is left out to keep the default
# run short: FuzzFlattenRoundTrip flattens the same inputs and fails on
# everything FuzzFlatten checks (a non-ErrDocument error, an invalid key, a
# text value that is not UTF-8, a list that is not JSON). Run it by hand with
#   go test -run '^$' -fuzz '^FuzzFlatten$' ./source/file
targets=(
	"./keyspace FuzzKey 300000x"
	"./api FuzzValueEncoding 200000x"
	"./audit/record FuzzValueContentType 25000x"
	"./source/file FuzzFlattenRoundTrip 200000x"
	"./server/httpapi FuzzPutKey 25000x"
	"./server/httpapi FuzzRequestBody 50000x"
)

start=$SECONDS
for t in "${targets[@]}"; do
	read -r pkg name count <<<"$t"
	cmd=(go test -run '^$' -fuzz "^${name}\$" -fuzztime "${FUZZTIME:-$count}" "$pkg")
	echo "+ ${cmd[*]}"
	if ! "${cmd[@]}"; then
		echo "fuzz.sh: $name in $pkg failed; the failing input is under $pkg/testdata/fuzz/$name/" >&2
		exit 1
	fi
done
echo "fuzz.sh: ${#targets[@]} targets passed in $((SECONDS - start))s"
