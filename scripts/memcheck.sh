#!/usr/bin/env bash
# valgrind memcheck of a short training loop on the compiled kernels (SimpleConvNet and
# MultiLayerNetExtend with batch norm and dropout, Adam; 1 and 2 kernel threads).
# Prints valgrind's leak summary and every "definitely lost" record whose stack mentions
# nnfast (its kernels nnf_*, the extension _kernels, or nnfast's Python files);
# exit status 1 if there is one. Python's own allocations are not leaks of ours:
# PYTHONMALLOC=malloc makes them visible to valgrind, python3.supp quiets the rest.
# Usage: scripts/memcheck.sh [python]        (needs valgrind; ~1-3 minutes)
set -euo pipefail
py=${1:-python}
log=${NNFAST_MEMCHECK_LOG:-$(mktemp)}
[ -n "${NNFAST_MEMCHECK_LOG:-}" ] || trap 'rm -f "$log"' EXIT
supp=()
for f in /usr/lib/valgrind/python3.supp /usr/lib/x86_64-linux-gnu/valgrind/python3.supp; do
  [ -f "$f" ] && supp+=(--suppressions="$f")
done
PYTHONMALLOC=malloc NNFAST_REQUIRE_COMPILED=1 valgrind --tool=memcheck --leak-check=full \
  --show-leak-kinds=definite --errors-for-leak-kinds=definite --num-callers=30 \
  "${supp[@]}" --log-file="$log" "$py" - <<'PY'
import numpy as np
import nnfast
from nnfast import nets, optimizer

assert nnfast.build_info()["compiled"]
for threads in (1, 2):
    with nnfast.num_threads(threads):
        np.random.seed(0)
        for net, shape in ((nets.SimpleConvNet((1, 12, 12), {"filter_num": 4, "filter_size": 3,
                                                              "pad": 1, "stride": 1}, 16, 10),
                            (8, 1, 12, 12)),
                           (nets.MultiLayerNetExtend(20, [16, 16], 10, use_batchnorm=True,
                                                     use_dropout=True), (8, 20))):
            opt = optimizer.Adam(lr=0.01)
            for step in range(3):
                x, t = np.random.randn(*shape), np.random.randint(0, 10, shape[0])
                opt.update(net.params, net.gradient(x, t))
                net.loss(x, t)
            net.accuracy(x, t)
print("training loop done")
PY
sed -n '/HEAP SUMMARY/,/ERROR SUMMARY/p' "$log" | sed 's/^==[0-9]*== //'
ours=$(awk '/definitely lost in loss record/{rec=$0; keep=0; next}
            rec && /nnf_|_kernels|nnfast/{keep=1}
            rec && /^==[0-9]+== $/{if (keep) print rec; rec=""}' "$log")
if [ -n "$ours" ]; then
  echo "definite leaks through nnfast:"; echo "$ours"
  exit 1
fi
echo "memcheck: no definite leak through nnfast"
