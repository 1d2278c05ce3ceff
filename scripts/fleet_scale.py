#!/usr/bin/env python3
"""Shared-pool scale check (issue 11): one `jnet assign <jail> --pool big`
process against a local PostgreSQL holding 10,000 leases, median wall time
over repeated runs, next to the file store's figure for 10,000 jails from
the same run (same binary, same machine, same moment).

The server is started here (initdb + pg_ctl in a temporary directory,
Unix socket only, fsync on as in production unless --no-fsync, run as the
postgres user when root). The 10,000 leases belong to ten other hosts, laid
out like scripts/scale.py's inventory (dense from 10.0.0.2, every 7th
address of the upper half free), so the lowest free address is deep in the
pool. Every measured assign is undone by an untimed `jnet release`.

The file store and PostgreSQL runs take turns (and with --compare OLD,
an older binary against the same database too), so both figures come
from the same moments of the same run.

Usage: scripts/fleet_scale.py [--jnet target/release/jnet] [--compare OLD] [--rt] [--runs 30] [--leases 10000]
"""
import argparse
import glob
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

POOL = """
[host]
external_interface = "eth0"
state_dir = "%s"

[pools.big]
network = "10.0.0.0/8"
interface = "lo1"
gateway = "10.0.0.1"
"""


# `--rt`: this script makes itself SCHED_FIFO, so the server and every
# measured jnet (its children) run so too, and other work on a shared
# machine (builds) does not decide the figures; what is left is jnet's and
# the server's own time. The kernel's RT throttling (sched_rt_runtime_us)
# still leaves the rest of the machine 5%.
RT_PRIORITY = 10


def addr(i):
    a = 0x0A000002 + i
    return "%d.%d.%d.%d" % (a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255)


def kept(i, n):
    return not (i % 7 == 3 and i > n // 2)


def run_once(argv, cwd):
    t = time.perf_counter()
    p = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit("%s failed (%d): %s" % (" ".join(argv), p.returncode, p.stderr.decode()))
    return dt


def measure(cases, runs):
    """Median and min wall time (ms) of one assign per case. The cases take
    turns within each round, so a load change on the machine (other
    builds) hits them alike instead of skewing whichever ran last."""
    times = [[] for _ in cases]
    for _ in range(runs):
        for i, (base, cwd) in enumerate(cases):
            times[i].append(run_once(base + ["assign", "newjail", "--pool", "big"], cwd))
            run_once(base + ["release", "newjail"], cwd)
    return [(statistics.median(t) * 1000, min(t) * 1000) for t in times]


class Server:
    def __init__(self, work, fsync):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin")) + ["/usr/local/bin"]
        self.bin = next((b for b in reversed(bins) if os.path.exists(os.path.join(b, "initdb"))), None)
        if not self.bin:
            sys.exit("PostgreSQL is not installed (initdb not found)")
        self.dir = os.path.join(work, "pg")
        os.makedirs(self.dir)
        self.root = os.geteuid() == 0
        if self.root:
            u = pwd.getpwnam("postgres")
            os.chown(self.dir, u.pw_uid, u.pw_gid)
            os.chmod(work, 0o755)
        self.data = os.path.join(self.dir, "data")
        self.tool("initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        opts = "-k %s -c listen_addresses= -p 5432%s" % (self.dir, "" if fsync else " -c fsync=off")
        # With --rt the server (and every backend it forks) inherits
        # SCHED_FIFO from this script.
        self.tool("pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "log"), "-w", "-o", opts, "start")
        self.psql("postgres", "CREATE ROLE jnet LOGIN")
        self.psql("postgres", "CREATE DATABASE jnet OWNER jnet")

    def tool(self, name, *args):
        argv = [os.path.join(self.bin, name)] + list(args)
        if self.root:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)

    def psql(self, db, sql, user="postgres"):
        psql = os.path.join(self.bin, "psql")
        if not os.path.exists(psql):
            psql = shutil.which("psql") or sys.exit("psql not found")
        subprocess.run([psql, "-q", "-h", self.dir, "-U", user, "-d", db, "-v",
                        "ON_ERROR_STOP=1", "-c", sql], check=True, stdout=subprocess.DEVNULL)

    def stop(self):
        self.tool("pg_ctl", "-D", self.data, "-w", "-m", "fast", "stop")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jnet", default="target/release/jnet")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--leases", type=int, default=10000)
    ap.add_argument("--no-fsync", action="store_true")
    ap.add_argument("--rt", action="store_true", help="run the server and jnet SCHED_FIFO (a machine busy with other work)")
    ap.add_argument("--compare", help="another jnet binary to measure against the same database (before/after)")
    ap.add_argument("--keep", action="store_true", help="leave the server running and the directory (for profiling)")
    args = ap.parse_args()
    jnet = os.path.abspath(args.jnet)
    if args.rt:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(RT_PRIORITY))
    n = args.leases
    work = tempfile.mkdtemp(prefix="jnet-fleet-scale-")
    server = None
    try:
        # The file store with n jails.
        fdir = os.path.join(work, "file")
        os.makedirs(os.path.join(fdir, "state"))
        with open(os.path.join(fdir, "jnet.toml"), "w") as f:
            f.write(POOL % "state")
        with open(os.path.join(fdir, "state", "inventory"), "w") as f:
            f.write("jnet-inventory 1\n")
            for i in range(n):
                if kept(i, n):
                    f.write("jail j%d mode=dedicated address=%s pool=big interface=lo1 phase=stopped\n" % (i, addr(i)))
        fbase = [jnet, "-c", "jnet.toml"]
        run_once(fbase + ["assign", "warm", "--pool", "big"], fdir)
        run_once(fbase + ["release", "warm"], fdir)

        # PostgreSQL with n leases of ten other hosts; this host has none.
        server = Server(work, not args.no_fsync)
        pdir = os.path.join(work, "fleet")
        os.makedirs(pdir)
        with open(os.path.join(pdir, "jnet.toml"), "w") as f:
            f.write(POOL % "state")
            f.write('\n[store]\nbackend = "postgres"\nurl = "host=%s port=5432 dbname=jnet user=jnet"\n'
                    'host_id = "thishost"\n' % server.dir)
        pbase = [jnet, "-c", "jnet.toml"]
        run_once(pbase + ["store", "migrate"], pdir)
        run_once(pbase + ["assign", "warm", "--pool", "big"], pdir)  # creates the pool row
        run_once(pbase + ["release", "warm"], pdir)
        # The same addresses as kept() keeps, computed by the server.
        server.psql("jnet", "INSERT INTO jnet_leases (pool, address, host, jail) "
                    "SELECT 'big', '10.0.0.2'::inet + i, 'h' || lpad((i %% 10)::text, 2, '0'), 'j' || i "
                    "FROM generate_series(0, %d) i WHERE NOT (i %% 7 = 3 AND i > %d); ANALYZE jnet_leases" % (n - 1, n // 2),
                    user="jnet")

        cases = [(fbase, fdir), (pbase, pdir)]
        if args.compare:
            cases.append(([os.path.abspath(args.compare), "-c", "jnet.toml"], pdir))
        # What starting any process costs from here (fork, exec, wait):
        # part of every figure below.
        spawn = statistics.median(run_once(["/bin/true"], work) for _ in range(args.runs)) * 1000
        res = measure(cases, args.runs)
        (fms, fmin), (pms, pmin) = res[0], res[1]
        print("one `jnet assign --pool` process, %d runs each, %d leases/jails:" % (args.runs, n))
        print("  (starting /bin/true from here: median %.2f ms, included in each figure)" % spawn)
        print("  file store:  median %6.2f ms (min %.2f)" % (fms, fmin))
        print("  postgres:    median %6.2f ms (min %.2f)%s%s" % (pms, pmin, "  [fsync off]" if args.no_fsync else "",
                                                           "  [SCHED_FIFO]" if args.rt else ""))
        if args.compare:
            print("  postgres, %s: median %6.2f ms (min %.2f)" % (args.compare, res[2][0], res[2][1]))
    finally:
        if args.keep:
            print("kept %s (stop: pg_ctl -D %s/pg/data stop)" % (work, work))
            return
        if server:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
