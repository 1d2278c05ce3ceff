#!/usr/bin/env python3
"""Scale check for jnet: builds inventories of 10, 1,000, 10,000 and 100,000
jails in a /8 pool and measures one `jnet assign <jail> --pool <pool>`
process (median wall time and peak RSS over repeated runs) and
`jnet inventory --format json` at 10,000.

Each size starts from a generated version-1 inventory. The first command on
it (reported as "cold") reads it fully and rewrites it in the current format
with its index. Every measured run then starts from the same logical
inventory: the jail it assigned is released again by an untimed
`jnet release`, as in steady use (the journal grows by two short records per
run and is compacted when it reaches its bound).

With --amortised N, also runs N assigns of distinct jails back to back at
each size and reports their mean, which includes the compactions that N
changes cause (one per ~300 changes with the default journal bound).

Usage: scripts/scale.py [--jnet target/release/jnet] [--runs 30] [--amortised 0]
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


def peak_rss(argv, cwd):
    """Peak RSS in KiB of one run, measured by /usr/bin/time: a child forked
    from this Python process would report Python's own RSS as its peak."""
    if not os.path.exists("/usr/bin/time"):
        return run_once(argv, cwd)[1]
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + argv, cwd=cwd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, check=True)
    return int(p.stderr.decode().strip().splitlines()[-1])


def measure(argv, cwd, runs, after=None):
    times = []
    for _ in range(runs):
        dt, _ = run_once(argv, cwd)
        times.append(dt)
        if after:
            after()
    kib = peak_rss(argv, cwd)
    if after:
        after()
    return statistics.median(times) * 1000, kib


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jnet", default="target/release/jnet")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--sizes", default="10,1000,10000,100000")
    ap.add_argument("--amortised", type=int, default=0)
    args = ap.parse_args()
    jnet = os.path.abspath(args.jnet)
    work = tempfile.mkdtemp(prefix="jnet-scale-")
    try:
        with open(os.path.join(work, "jnet.toml"), "w") as f:
            f.write(CONFIG)
        state = os.path.join(work, "state")
        os.makedirs(state)
        inv = os.path.join(state, "inventory")
        print("%-8s %-14s %-12s %s" % ("jails", "assign median", "peak RSS", "cold first assign"))
        results = {}
        base = [jnet, "-c", "jnet.toml"]
        for n in [int(x) for x in args.sizes.split(",")]:
            for f in os.listdir(state):
                os.remove(os.path.join(state, f))
            with open(inv, "w") as f:
                f.write(inventory(n))
            cold, _ = run_once(base + ["assign", "warm", "--pool", "big"], work)
            run_once(base + ["release", "warm"], work)

            def release():
                run_once(base + ["release", "newjail"], work)

            ms, kib = measure(base + ["assign", "newjail", "--pool", "big"], work, args.runs, release)
            results[n] = ms
            print("%-8d %8.2f ms    %6.1f MiB   %8.2f ms" % (n, ms, kib / 1024, cold * 1000))
            if n == 10000:
                ims, ikib = measure(base + ["inventory", "--format", "json"], work, args.runs)
                print("inventory --format json at 10000: %.2f ms, %.1f MiB" % (ims, ikib / 1024))
            if args.amortised:
                t = [run_once(base + ["assign", "am%d" % i, "--pool", "big"], work)[0] for i in range(args.amortised)]
                print("         %d distinct assigns: mean %.2f ms, max %.2f ms" % (len(t), statistics.mean(t) * 1000, max(t) * 1000))
        if 10 in results and 100000 in results:
            print("assign at 100000 / assign at 10: %.2fx" % (results[100000] / results[10]))
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
