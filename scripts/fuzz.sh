#!/usr/bin/env bash
# Runs every fuzz target in the module for a short budget each: the
# mutation engine, not only the seed corpus that "go test" replays.
#
#   scripts/fuzz.sh            # FUZZ_BUDGET seconds in all (default 60), split evenly
#   FUZZ_TIME=30s scripts/fuzz.sh   # a fixed time per target instead
#
# go test -fuzz takes one target of one package at a time, so each target
# is its own run. A failing input is written by go test to
# <package>/testdata/fuzz/<Target>/<hash>: fix the bug, then commit that
# file, which makes it a seed that every later "go test" replays.
set -euo pipefail
cd "$(dirname "$0")/.."

budget=${FUZZ_BUDGET:-60}
# "path/to/file_test.go:func FuzzName(" -> "./path/to FuzzName"
mapfile -t targets < <(git ls-files '*_test.go' | xargs grep -H -o '^func Fuzz[A-Za-z0-9_]*(' |
  sed -E 's#^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\($#./\1 \2#; s#^[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\($#. \1#' | sort -u)
if [ ${#targets[@]} -eq 0 ]; then
  echo "no fuzz targets found" >&2
  exit 1
fi
per=${FUZZ_TIME:-$(( budget / ${#targets[@]} > 2 ? budget / ${#targets[@]} : 2 ))s}
echo "fuzzing ${#targets[@]} targets, $per each"

# fuzz_once PKG NAME: one run. Prints "ok", "crash" (a failing input was
# written under testdata/fuzz: a real finding), "deadline" (the run ended
# with only "context deadline exceeded" and wrote nothing: Go 1.26's fuzz
# coordinator races its own -fuzztime deadline, golang/go#75804, fixed in
# Go 1.27) or "fail" (anything else).
fuzz_once() {
  local pkg=$1 name=$2 dir="$1/testdata/fuzz/$2" before after log
  before=$(ls -1 "$dir" 2>/dev/null | sort || true)
  log=$(mktemp)
  # -parallel 2: the CI machine has two cores; the budget is wall time.
  if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$per" -parallel 2 "$pkg" 2>&1 | tee "$log" >&2 && [ "${PIPESTATUS[0]}" -eq 0 ]; then
    rm -f "$log"; echo ok; return
  fi
  after=$(ls -1 "$dir" 2>/dev/null | sort || true)
  if [ "$before" != "$after" ]; then
    comm -13 <(echo "$before") <(echo "$after") | sed "s#^#   new input: $dir/#" >&2
    echo crash
  elif grep -q 'context deadline exceeded' "$log" && ! grep -qE 'Failing input written|panic:' "$log"; then
    echo deadline
  else
    echo fail
  fi
  rm -f "$log"
}

failed=()
for t in "${targets[@]}"; do
  read -r pkg name <<<"$t"
  echo "-- $pkg $name"
  r=$(fuzz_once "$pkg" "$name")
  if [ "$r" = deadline ]; then
    echo "   $name: the fuzz coordinator's deadline race (golang/go#75804), nothing found; once more" >&2
    r=$(fuzz_once "$pkg" "$name")
    [ "$r" = deadline ] && { echo "   $name: the deadline race again, nothing found; the seed corpus (replayed by go test) passed" >&2; r=ok; }
  fi
  [ "$r" = ok ] || failed+=("$pkg $name")
done
if [ ${#failed[@]} -gt 0 ]; then
  printf 'fuzz target failed: %s\n' "${failed[@]}" >&2
  echo "commit the input under testdata/fuzz once the bug is fixed: it becomes a seed" >&2
  exit 1
fi
