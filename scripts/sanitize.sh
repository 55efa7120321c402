#!/usr/bin/env bash
# Build nnfast with AddressSanitizer + UndefinedBehaviorSanitizer and run
#   1. the plain-C kernel tests (CTest), then
#   2. the Python test suite against the sanitized extension
#      (the ASan runtime must be preloaded into the non-sanitized python).
# Usage: scripts/sanitize.sh [extra pytest args]     (needs gcc and a venv with the test extra)
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${NNFAST_SANITIZE_BUILD:-$top/build/sanitize}

echo "== C kernel tests under ASan/UBSan"
cmake -S "$top" -B "$build/ctest" -DNNFAST_BUILD_CTESTS=ON -DNNFAST_SANITIZE=ON \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build/ctest" -j 2 >/dev/null
ctest --test-dir "$build/ctest" --output-on-failure

echo "== Python tests against a sanitized extension"
venv="$build/venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q scikit-build-core cython cython-cmake numpy ninja cmake \
      pytest threadpoolctl hypothesis
fi
"$venv/bin/python" -m pip install -q --no-build-isolation "$top" \
    -Ccmake.define.NNFAST_SANITIZE=ON -Cbuild-dir="$build/wheel" -Ccmake.build-type=RelWithDebInfo
asan=$(gcc -print-file-name=libasan.so)
ubsan=$(gcc -print-file-name=libubsan.so)
# Python itself is not built with ASan: leak reports from the interpreter are
# noise, so leaks are checked separately (scripts/leakcheck.py, valgrind).
cd "$top"
LD_PRELOAD="$asan:$ubsan" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 NNFAST_REQUIRE_COMPILED=1 \
    "$venv/bin/python" -m pytest -q -p no:cacheprovider -x "$@"
