#!/usr/bin/env bash
# Compares the audit benchmark of two builds on one machine: the build at
# REV (a git revision) and the working tree, run alternately ROUNDS times
# (each run one round per cell), so drift on a shared machine hits both.
# Prints every run's table, then the median per cell and build.
#
#   bench/auditbench/compare.sh REV [ROUNDS] [DURATION]
#
# PostgreSQL is measured when CAREFRONT_TEST_POSTGRES holds a DSN.
set -euo pipefail
rev=${1:?give the git revision to compare with}
rounds=${2:-5}
dur=${3:-5s}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$work/old" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git -C "$root" worktree add --detach "$work/old" "$rev" >/dev/null 2>&1
(cd "$work/old" && go build -o "$work/before" ./bench/auditbench)
(cd "$root" && go build -o "$work/after" ./bench/auditbench)
for i in $(seq 1 "$rounds"); do
  for build in before after; do
    echo "== round $i: $build"
    "$work/$build" -duration "$dur" -rounds 1 | tee -a "$work/$build.txt"
  done
done
echo
echo "== medians over $rounds runs (records/s; ratio = durable / not durable)"
for build in before after; do
  awk -v b="$build" '$1 ~ /^(sqlite|postgres)$/ && $2 ~ /^[0-9]+$/ {
      k = $1 " " $2; d[k] = d[k] " " $3; n[k] = n[k] " " $4 }
    function med(s,   a, c, i, j, t) { c = split(s, a, " ");
      for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
      return a[int((c + 1) / 2)] }
    END { for (k in d) { dd = med(d[k]); nn = med(n[k]); printf "%-7s %-12s durable %8d  not durable %8d  ratio %.2fx\n", b, k, dd, nn, dd / nn } }' \
    "$work/$build.txt" | sort -k2,3
done
