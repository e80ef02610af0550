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

failed=()
for t in "${targets[@]}"; do
  read -r pkg name <<<"$t"
  echo "-- $pkg $name"
  # -parallel 2: the CI machine has two cores; the budget is wall time.
  if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$per" -parallel 2 "$pkg"; then
    failed+=("$pkg $name")
    ls -1 "$pkg/testdata/fuzz/$name" 2>/dev/null | sed "s#^#   new input: $pkg/testdata/fuzz/$name/#" || true
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  printf 'fuzz target failed: %s\n' "${failed[@]}" >&2
  echo "commit the input under testdata/fuzz once the bug is fixed: it becomes a seed" >&2
  exit 1
fi
