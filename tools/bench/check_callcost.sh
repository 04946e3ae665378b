#!/bin/bash
# check_callcost.sh - libsaga-callcost.so and callcost-report on a real
# process: a program that makes LMDB and protobuf-c calls, run with the
# library preloaded, must leave a line whose counts the report turns into
# per-saga figures. Usage: check_callcost.sh LIB REPORT PROGRAM [ARGS...]
set -euo pipefail
lib=$1 report=$2
shift 2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# The program (the store unit test: LMDB calls by the thousand).
SAGA_CALLCOST_DIR=$dir LD_PRELOAD=$lib "$@" > "$dir.out" 2>&1 || {
    cat "$dir.out" >&2
    rm -f "$dir.out"
    exit 1
}
rm -f "$dir.out"
shopt -s nullglob
files=("$dir"/*)
if [[ ${#files[@]} -ne 1 ]]; then
    echo "expected one report file, found ${#files[@]}" >&2
    exit 1
fi
line=$(cat "${files[0]}")
echo "$line"
puts=$(sed -n 's/.* mdb_put=\([0-9]*\)\/.*/\1/p' <<<"$line")
commits=$(sed -n 's/.* mdb_txn_commit_cpu=\([0-9]*\)\/.*/\1/p' <<<"$line")
if [[ -z $puts || $puts -eq 0 || -z $commits || $commits -eq 0 ]]; then
    echo "no LMDB puts or commits counted" >&2
    exit 1
fi

# The report: one line for the process, and its columns add up.
out=$("$report" "$dir" 1000)
echo "$out"
[[ $(wc -l <<<"$out") -eq 2 ]] || { echo "expected a header and one line" >&2; exit 1; }
awk 'NR == 2 {
    if ($2 <= 0 || $3 <= 0 || $4 <= 0 || $4 > $3) { print "bad figures: " $0; exit 1 }
    d = $2 - $3 - $5 - $6; if (d < -0.2 || d > 0.2) { print "columns do not add up: " $0; exit 1 }
}' <<<"$out"

# Bad usage is refused with status 2.
set +e
"$report" "$dir" 0 > /dev/null 2>&1
rc=$?
set -e
[[ $rc -eq 2 ]] || { echo "SAGAS 0 gave status $rc, not 2" >&2; exit 1; }
echo "ok"
