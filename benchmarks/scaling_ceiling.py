"""Can two single-thread workers beat one by 1.7× on this machine?  The ceiling, measured.

``python benchmarks/scaling_ceiling.py [--seconds S] [--json PATH]``

The same single-thread job runs alone, then as two processes at once; the
table gives the pair's total rate over the lone rate (2.00 = independent
cores).  Jobs: a cache-resident bf16 GEMM (pure compute) and the shipped
network's ``fast`` pass at 1280×720 (half-size network, the work a render
worker does per frame).  A render worker does more than the network
(decoding, VapourSynth, encoding, the DIS prior in other threads), which is
why ``vsugsp bench scaling`` reports the cores a render keeps busy as well.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

JOB = r"""
import sys, time, torch
torch.set_num_threads(1)
kind, seconds = sys.argv[1], float(sys.argv[2])
if kind == "gemm":
    a = torch.randn(256, 256).bfloat16(); b = torch.randn(256, 256).bfloat16()
    step = lambda: torch.mm(a, b); work = 2 * 256**3 / 1e9
else:
    from vsugsp.engine import resolve_model
    net = resolve_model("small", torch.device("cpu"), False)
    x0, x1 = torch.rand(1, 3, 720, 1280), torch.rand(1, 3, 720, 1280)
    def step():
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16):
            net(x0, x1, 0.5, mode="pruned", backend="tiles", threshold=0.7, max_density=[0.5, 0.4, 0.3], scale=0.5)
    work = 1.0
step(); step()
n, t0 = 0, time.perf_counter()
while time.perf_counter() - t0 < seconds:
    step(); n += 1
print(n * work / (time.perf_counter() - t0))
"""

UNITS = {"gemm": "GFLOP/s", "net": "passes/s"}


def _run(kind: str, seconds: float, copies: int) -> list[float]:
    procs = [subprocess.Popen([sys.executable, "-c", JOB, kind, str(seconds)], stdout=subprocess.PIPE, text=True)
             for _ in range(copies)]
    return [float(p.communicate()[0]) for p in procs]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="timed seconds per run (default 20)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    rows = []
    for kind in ("gemm", "net"):
        alone = _run(kind, args.seconds, 1)[0]
        pair = _run(kind, args.seconds, 2)
        rows.append({"job": kind, "unit": UNITS[kind], "alone": alone, "pair": pair, "ratio": sum(pair) / alone})
    print("| job | alone | pair (each) | pair total / alone |")
    print("| --- | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['job']} | {r['alone']:.2f} {r['unit']} | {r['pair'][0]:.2f}, {r['pair'][1]:.2f} | {r['ratio']:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"kind": "scaling-ceiling", "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
