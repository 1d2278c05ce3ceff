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

Usage: scripts/scale.py [--jnet target/release/jnet] [--runs 30] [--amortised 0] [--tmpdir DIR]
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


def run_once(argv, cwd, ok=(0,)):
    t = time.perf_counter()
    p = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t
    err = p.stderr.read().decode()
    p.stderr.close()
    if os.waitstatus_to_exitcode(status) not in ok:
        sys.exit("%s failed: %s" % (" ".join(argv), err))
    return dt, ru.ru_maxrss  # KiB on Linux


def peak_rss(argv, cwd, ok=(0,)):
    """Peak RSS in KiB of one run, measured by /usr/bin/time: a child forked
    from this Python process would report Python's own RSS as its peak."""
    if not os.path.exists("/usr/bin/time"):
        return run_once(argv, cwd, ok)[1]
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + argv, cwd=cwd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    if p.returncode not in ok:
        sys.exit("%s failed: %s" % (" ".join(argv), p.stderr.decode()))
    return int(p.stderr.decode().strip().splitlines()[-1])


def measure(argv, cwd, runs, after=None, ok=(0,)):
    times = []
    for _ in range(runs):
        dt, _ = run_once(argv, cwd, ok)
        times.append(dt)
        if after:
            after()
    kib = peak_rss(argv, cwd, ok)
    if after:
        after()
    return statistics.median(times) * 1000, kib


def ratio_table(title, results, sizes, rss):
    """Prints one row per command: each size's median next to the 10-jail
    figure of the same run and the ratio to it, and the peak RSS at the
    largest size."""
    base = sizes[0]
    print(title)
    head = "%-26s" % "command" + "".join("%12s" % ("%d jails" % n) for n in sizes)
    head += "".join("%10s" % ("x%d" % n) for n in sizes[1:]) + "%12s" % ("RSS@%d" % sizes[-1])
    print(head)
    for cmd, per in results.items():
        line = "%-26s" % cmd
        for n in sizes:
            line += "%9.2f ms" % per[n] if n in per else "%12s" % "-"
        for n in sizes[1:]:
            line += "%9.2fx" % (per[n] / per[base]) if n in per and base in per and per[base] else "%10s" % "-"
        line += "%8.1f MiB" % (rss[cmd] / 1024) if cmd in rss else "%12s" % "-"
        print(line)
    print()


def bare(args, jnet):
    work = tempfile.mkdtemp(prefix="jnet-scale-", dir=args.tmpdir)
    try:
        with open(os.path.join(work, "jnet.toml"), "w") as f:
            f.write(CONFIG)
        state = os.path.join(work, "state")
        os.makedirs(state)
        inv = os.path.join(state, "inventory")
        results = {"assign --pool": {}, "assign, cold first": {}, "inventory --format json": {}}
        rss = {}
        base = [jnet, "-c", "jnet.toml"]
        sizes = [int(x) for x in args.sizes.split(",")]
        for n in sizes:
            for f in os.listdir(state):
                os.remove(os.path.join(state, f))
            with open(inv, "w") as f:
                f.write(inventory(n))
            cold, _ = run_once(base + ["assign", "warm", "--pool", "big"], work)
            run_once(base + ["release", "warm"], work)

            def release():
                run_once(base + ["release", "newjail"], work)

            ms, kib = measure(base + ["assign", "newjail", "--pool", "big"], work, args.runs, release)
            results["assign --pool"][n] = ms
            results["assign, cold first"][n] = cold * 1000
            rss["assign --pool"] = kib
            ims, ikib = measure(base + ["inventory", "--format", "json"], work, args.runs)
            results["inventory --format json"][n] = ims
            rss["inventory --format json"] = ikib
            if args.amortised:
                t = [run_once(base + ["assign", "am%d" % i, "--pool", "big"], work)[0] for i in range(args.amortised)]
                print("%d jails: %d distinct assigns: mean %.2f ms, max %.2f ms" % (n, len(t), statistics.mean(t) * 1000, max(t) * 1000))
                for i in range(args.amortised):
                    run_once(base + ["release", "am%d" % i], work)
        ratio_table("bare inventory (jails only in the inventory), median of %d runs:" % args.runs, results, sizes, rss)
    finally:
        shutil.rmtree(work)


def host_port(i, k):
    """Host port k (0-3) of jail i: unique over 10,000 jails."""
    return 1024 + 3 * i + k if k < 3 else 1024 + i


def declared_toml(n, with_conf):
    t = [CONFIG.replace('state_dir = "state"', 'state_dir = "state"\njail_conf = "jail.conf"' if with_conf else 'state_dir = "state"')]
    for i in range(n):
        t.append(
            '[jails.j%d]\nprofile = "db"\npool = "big"\nports = ["tcp/80", "tcp/443", "udp/53", "tcp/8080"]\n'
            'expose = ["tcp/%d:80", "tcp/%d:443", "udp/%d:53", "tcp/%d:8080"]\n'
            % (i, host_port(i, 0), host_port(i, 1), host_port(i, 3), host_port(i, 2))
        )
    return "\n".join(t)


JAIL_CONF_HEAD = """exec.start = "/bin/sh /etc/rc";
exec.stop = "/bin/sh /etc/rc.shutdown";
exec.clean;
$base = "/usr/local/jails";
path = "$base/$name";
exec.prestart += "/usr/local/bin/jnet hook prestart $name";
exec.poststop += "/usr/local/bin/jnet hook poststop $name";
"""


def declared_conf(n):
    t = [JAIL_CONF_HEAD]
    for i in range(n):
        t.append('j%d {\n  host.hostname = "j%d.example.org";\n  ip4.addr = "lo1|%s/32";\n  persist;\n}\n' % (i, i, addr(i)))
    return "".join(t)


def declared_inventory(n):
    lines = ["jnet-inventory 1"]
    for i in range(n):
        lines.append("jail j%d mode=dedicated address=%s pool=big interface=lo1 phase=stopped" % (i, addr(i)))
    return "\n".join(lines) + "\n"


# (label, argv after `jnet -c jnet.toml`, exit codes accepted)
READ_COMMANDS = [
    ("list", ["list"]),
    ("list --format json", ["list", "--format", "json"]),
    ("pools", ["pools"]),
    ("inventory", ["inventory"]),
    ("inventory --format json", ["inventory", "--format", "json"]),
    ("check", ["check"]),
    ("pf render --syntax pf", ["pf", "render", "--syntax", "pf"]),
    ("pf render --syntax nft", ["pf", "render", "--syntax", "nft"]),
    ("plan", ["plan"]),
]


def declared(args, jnet, variant):
    """Jails declared in jnet.toml (4 ports, 4 exposures, profile db: 2 more
    ports, nat, no exposures of its own so no conflicts), in
    jail.conf (static ip4.addr, hooks, a `*`-style global block), or both,
    all with an address in the inventory; `assign --pool` takes one more."""
    sizes = [int(x) for x in args.declared_sizes.split(",")]
    results, rss = {}, {}
    for n in sizes:
        work = tempfile.mkdtemp(prefix="jnet-scale-", dir=args.tmpdir)
        try:
            in_toml = variant in ("toml", "both")
            in_conf = variant in ("conf", "both")
            with open(os.path.join(work, "jnet.toml"), "w") as f:
                f.write(declared_toml(n if in_toml else 0, in_conf))
            if in_conf:
                with open(os.path.join(work, "jail.conf"), "w") as f:
                    f.write(declared_conf(n))
            state = os.path.join(work, "state")
            os.makedirs(state)
            with open(os.path.join(state, "inventory"), "w") as f:
                f.write(declared_inventory(n))
            base = [jnet, "-c", "jnet.toml"]
            run_once(base + ["assign", "warm", "--pool", "big"], work)
            run_once(base + ["release", "warm"], work)

            def release():
                run_once(base + ["release", "newjail"], work)

            ms, kib = measure(base + ["assign", "newjail", "--pool", "big"], work, args.runs, release)
            results.setdefault("assign --pool", {})[n] = ms
            rss["assign --pool"] = kib
            if variant in args.read_variants.split(","):
                for label, argv in READ_COMMANDS:
                    one, _ = run_once(base + argv, work, ok=(0, 1))
                    runs = args.runs if one < 0.2 else max(3, min(args.runs, int(2 / one)))
                    ms, kib = measure(base + argv, work, runs, ok=(0, 1))
                    results.setdefault(label, {})[n] = ms
                    rss[label] = kib
        finally:
            shutil.rmtree(work)
    where = {"toml": "jnet.toml", "conf": "jail.conf", "both": "jnet.toml and jail.conf"}[variant]
    ratio_table("jails declared in %s (and in the inventory), median of up to %d runs:" % (where, args.runs), results, sizes, rss)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jnet", default="target/release/jnet")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--sizes", default="10,1000,10000,100000", help="bare-inventory sizes")
    ap.add_argument("--declared-sizes", default="10,1000,10000", help="config-declared sizes")
    ap.add_argument("--variants", default="bare,toml,conf,both")
    ap.add_argument("--read-variants", default="toml,both",
                    help="variants whose read commands (list, check, plan, ...) are timed")
    ap.add_argument("--amortised", type=int, default=0)
    ap.add_argument("--tmpdir", default=None,
                    help="where the work directories go (e.g. /dev/shm: an assign's fdatasync then costs "
                         "no disk flush, so a busy disk does not swamp the figures)")
    args = ap.parse_args()
    jnet = os.path.abspath(args.jnet)
    for v in args.variants.split(","):
        if v == "bare":
            bare(args, jnet)
        else:
            declared(args, jnet, v)


if __name__ == "__main__":
    main()
