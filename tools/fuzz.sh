#!/usr/bin/env bash
# Builds the libFuzzer targets (build-fuzz/, clang-14, ASan + UBSan) and runs
# each for N seconds (default 20), one after the other, from the checked-in
# seeds (tests/fuzz/corpus/<target>/), after replaying every regression input
# (tests/fuzz/regressions/<target>/). New corpus entries go to
# build-fuzz/corpus/<target>/ and crashing inputs to build-fuzz/findings/<target>/;
# a finding fails the script. Usage: [DPTRAIN_FUZZ_SEED=N] tools/fuzz.sh [seconds] [target...]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
seconds=${1:-20}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(idx image config dataset checkpoint checkpoint_edits)

CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -DDPTRAIN_FUZZ=ON -DDPTRAIN_BUILD_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_targets

# Open MPI and OpenBLAS are linked in but not used by the readers; one thread is enough.
export OPENBLAS_NUM_THREADS=1
# Leaks of the libraries themselves are suppressed: libhdf5's on its error paths, and Open MPI's
# from MPI_Init (the dataset reader opens files through MPI-IO, so that target is a one-process
# MPI job). The suppressions match only with the slow, exact unwinder.
cat tests/lsan-mpi.supp tests/fuzz/lsan-hdf5.supp > build-fuzz/lsan.supp
export LSAN_OPTIONS=suppressions=$root/build-fuzz/lsan.supp:fast_unwind_on_malloc=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}
# clang-14's LeakSanitizer tracks the dynamic TLS of dlopen'd libraries (Open MPI's components) by
# intercepting __tls_get_addr, and with Debian 12's glibc it records a block with garbage bounds
# ("DTLS 10 at 0x3b9d-0x400004c9f"): its stop-the-world tracer then dies reading it ("Tracer caught
# signal 11") at every leak check of fuzz_dataset. Without the interception it scans TLS as before.
export ASAN_OPTIONS=intercept_tls_get_addr=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}
status=0
for target in "${targets[@]}"; do
  binary=build-fuzz/tests/fuzz/fuzz_$target
  work=build-fuzz/corpus/$target findings=build-fuzz/findings/$target
  mkdir -p "$work" "$findings"
  regressions=tests/fuzz/regressions/$target
  if compgen -G "$regressions/*" > /dev/null; then
    echo "== fuzz_$target: replaying $(ls "$regressions" | wc -l) regression inputs"
    "$binary" -runs=1 "$regressions"/* > "$findings/replay.log" 2>&1 || {
      echo "fuzz_$target: a regression input fails again:"; tail -30 "$findings/replay.log"; status=1; }
  fi
  echo "== fuzz_$target: ${seconds} s"
  log=$findings/fuzz.log
  # -rss_limit_mb/-malloc_limit_mb: an allocation the input's size cannot justify is a finding too.
  # -seed: with DPTRAIN_FUZZ_SEED set (tools/test.sh sets 1), the inputs come in the same order on every
  # run, so a CI result depends on the code, not on a draw; a faster machine only goes further along them.
  # -timeout is wall-clock per input: generous, so that a loaded machine is not a finding.
  if nice -n 10 "$binary" -max_total_time="$seconds" -timeout=60 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
      ${DPTRAIN_FUZZ_SEED:+-seed="$DPTRAIN_FUZZ_SEED"} \
      -print_final_stats=1 -artifact_prefix="$findings/" "$work" "tests/fuzz/corpus/$target" > "$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    echo "fuzz_$target: ${seconds} s, ${runs} executions, no findings ($(grep -c . <(ls "$work")) corpus entries)"
  else
    echo "fuzz_$target: FINDING (inputs in $findings/):"
    grep -E "ERROR|SUMMARY|==[0-9]+==|#[0-9]+ +(DONE|NEW)" "$log" | tail -15
    status=1
  fi
done
exit $status
