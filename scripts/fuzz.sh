#!/usr/bin/env bash
# scripts/fuzz.sh SECONDS [TARGET...]
#
# Builds the cargo-fuzz targets in fuzz/ and runs each (all of them by
# default) for SECONDS seconds, one after the other on one core, with
# libFuzzer's -max_total_time. Prints executions per second per target and
# exits 1 if any target crashed (the crashing input is kept under
# fuzz/artifacts/<target>/, libFuzzer prints how to reproduce it).
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). No nightly toolchain is
# needed: RUSTC_BOOTSTRAP=1 lets the stable compiler take the -Z flags
# cargo-fuzz passes. Sanitizer: address by default; JNET_FUZZ_SANITIZER=none
# where ASan is unavailable (then only panics, aborts and libFuzzer's own
# -rss_limit_mb / -malloc_limit_mb catch bugs).
#
# Corpus: fuzz/work/corpus/<target> (ignored by git) is where libFuzzer keeps
# what it finds; it is seeded on every run from fuzz/seeds/<target> (small
# inputs written for this project), from tests/fixtures and from the shared
# conformance corpus ($JNET_CORPUS, default ../shared/corpus next to the
# checkout; files are read there at run time and never copied into the
# repository, see its SOURCES.md for their licences).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top/fuzz"

secs=${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}
shift
all=(jailconf config inventory index pflist listeners nft_json)
targets=("${@:-${all[@]}}")
corpus_src=${JNET_CORPUS:-$top/../shared/corpus}
san=${JNET_FUZZ_SANITIZER:-address}
work=$top/fuzz/work
export RUSTC_BOOTSTRAP=1

echo "== building fuzz targets (sanitizer: $san)"
cargo fuzz build -O -s "$san"

# seed DIR PREFIX FILE...: copies each FILE into DIR with PREFIX (a
# selector byte some targets read first, given as a printf escape) in front.
seed() {
    local dir=$1 prefix=$2
    shift 2
    local f
    for f in "$@"; do
        [ -f "$f" ] || continue
        { printf "$prefix"; cat "$f"; } >"$dir/seed-$(printf '%s' "$prefix$f" | cksum | cut -d' ' -f1)"
    done
}

seed_target() {
    local t=$1 d=$work/corpus/$1
    mkdir -p "$d"
    [ -d "seeds/$t" ] && cp -f seeds/"$t"/* "$d"/ 2>/dev/null || true
    shopt -s nullglob globstar
    case $t in
    jailconf)
        seed "$d" "" "$top"/tests/fixtures/jailconf/*.conf* "$corpus_src"/jailconf/**/*.conf* \
            "$top"/examples/jail.conf
        ;;
    config)
        seed "$d" "" "$top"/examples/*.toml "$top"/profiles/*.toml
        ;;
    pflist)
        seed "$d" '\001' "$top"/tests/fixtures/pf/**/*.ok "$corpus_src"/cmdout/pfctl-*
        seed "$d" '\000' "$corpus_src"/pf/fbsd-main/*.ok
        ;;
    listeners)
        seed "$d" '\000' "$corpus_src"/cmdout/sockstat-*
        seed "$d" '\001' "$corpus_src"/cmdout/sockstat-46s*
        # This machine's own /proc/net tables (tcp, tcp6, udp, udp6 select
        # 6, 7, 8, 9 with the 0x80 "jail" bit clear).
        local i=6
        for f in tcp tcp6 udp udp6; do
            seed "$d" "\\00$(printf '%o' $i)" "/proc/net/$f"
            i=$((i + 1))
        done
        ;;
    esac
    shopt -u nullglob globstar
}

failed=()
report=()
for t in "${targets[@]}"; do
    seed_target "$t"
    mkdir -p "$work/log" "$top/fuzz/artifacts/$t"
    log=$work/log/$t.log
    echo "== $t: ${secs}s ($(ls "$work/corpus/$t" | wc -l) inputs in the corpus)"
    rc=0
    # -timeout: an input taking over 10 s is a hang; -rss_limit_mb bounds
    # memory (an unbounded allocation is a finding); -max_len lets the
    # inventory/index targets see multi-block files.
    cargo fuzz run -O -s "$san" "$t" "$work/corpus/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
    line=$(printf '%-10s %8s execs/s  %10s execs  %s' "$t" "${speed:-?}" "${execs:-?}" "$cov")
    if [ "$rc" != 0 ]; then
        line="$line  CRASH (exit $rc, see $log)"
        failed+=("$t")
        grep -E 'panicked at|ERROR: |SUMMARY|Test unit written' "$log" | head -n 8 >&2 || true
    fi
    report+=("$line")
    echo "$line"
done

echo "== summary (${secs}s per target)"
printf '%s\n' "${report[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "== crashed: ${failed[*]}" >&2
    exit 1
fi
echo "== no crash"
