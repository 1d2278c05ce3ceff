#!/usr/bin/env python3
"""Scale check for jnet: builds inventories of 10, 1,000, 10,000 and 100,000
jails in a /8 pool and measures one `jnet assign <jail> --pool <pool>`
process (median wall time and peak RSS over repeated runs, each run starting
from the same inventory) and `jnet inventory --format json` at 10,000.

Usage: scripts/scale.py [--jnet target/release/jnet] [--runs 30]
Needs no root; works in a temporary directory.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

CONFIG = """
[host]
external_interface = "eth0"
state_dir = "state"

[pools.big]
network = "10.0.0.0/8"
interface = "lo1"
gateway = "10.0.0.1"
"""


def addr(i):
    # Jails hold 10.0.0.2 upwards, densely, with every 7th address free again
    # (released) so the free set has many holes and the lowest free is low.
    a = 0x0A000002 + i
    return "%d.%d.%d.%d" % (a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255)


def inventory(n):
    lines = ["jnet-inventory 1"]
    for i in range(n):
        if i % 7 == 3 and i > n // 2:
            continue  # a released address in the upper half
        lines.append(
            "jail j%d mode=dedicated address=%s pool=big interface=lo1 phase=stopped" % (i, addr(i))
        )
    return "\n".join(lines) + "\n"


def run_once(argv, cwd):
    t = time.perf_counter()
    p = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t
    err = p.stderr.read().decode()
    p.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit("%s failed: %s" % (" ".join(argv), err))
    return dt, ru.ru_maxrss  # KiB on Linux


def measure(argv, cwd, runs, prepare=None):
    times, rss = [], []
    for _ in range(runs):
        if prepare:
            prepare()
        dt, kib = run_once(argv, cwd)
        times.append(dt)
        rss.append(kib)
    return statistics.median(times) * 1000, max(rss)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jnet", default="target/release/jnet")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--sizes", default="10,1000,10000,100000")
    args = ap.parse_args()
    jnet = os.path.abspath(args.jnet)
    work = tempfile.mkdtemp(prefix="jnet-scale-")
    try:
        with open(os.path.join(work, "jnet.toml"), "w") as f:
            f.write(CONFIG)
        state = os.path.join(work, "state")
        os.makedirs(state)
        inv = os.path.join(state, "inventory")
        print("%-8s %-14s %-12s" % ("jails", "assign median", "peak RSS"))
        results = {}
        for n in [int(x) for x in args.sizes.split(",")]:
            orig = inventory(n)

            def reset():
                with open(inv, "w") as f:
                    f.write(orig)

            ms, kib = measure(
                [jnet, "-c", "jnet.toml", "assign", "newjail", "--pool", "big"], work, args.runs, reset
            )
            results[n] = ms
            print("%-8d %8.2f ms    %6.1f MiB" % (n, ms, kib / 1024))
            if n == 10000:
                reset()
                ims, ikib = measure([jnet, "-c", "jnet.toml", "inventory", "--format", "json"], work, args.runs)
                print("inventory --format json at 10000: %.2f ms, %.1f MiB" % (ims, ikib / 1024))
        if 10 in results and 100000 in results:
            print("assign at 100000 / assign at 10: %.2fx" % (results[100000] / results[10]))
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
