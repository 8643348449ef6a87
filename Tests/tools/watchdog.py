#!/usr/bin/env python3
"""Runs a command with a time limit; past it, prints what every process of the run is doing (the
process tree, each thread's kernel wait channel and, where gdb is installed, the Swift processes'
thread backtraces), then kills the run and exits 124.

A hung test run then ends with the evidence of where it hung instead of running into CI's limit.

    Tests/tools/watchdog.py SECONDS COMMAND [ARG...]
"""
import os
import shutil
import signal
import subprocess
import sys
import time


def descendants(root):
    parents = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
            parents[int(name)] = int(stat[stat.rindex(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            pass
    out, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        children = [p for p, pp in parents.items() if pp == pid]
        out += children
        frontier += children
    return out


def command_line(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def report(root):
    pids = [root] + descendants(root)
    print(f"\n=== watchdog: time limit reached; {len(pids)} processes in the run", flush=True)
    subprocess.run(["ps", "-o", "pid,ppid,pgid,etime,stat,wchan:24,args", "--forest", "-p", ",".join(map(str, pids))])
    gdb = shutil.which("gdb")
    for pid in pids:
        cmd = command_line(pid)
        if "PackageTests" not in cmd and "coursepack" not in cmd:
            continue
        print(f"\n=== {pid}: {cmd[:300]}", flush=True)
        try:
            for tid in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
                with open(f"/proc/{pid}/task/{tid}/wchan") as f:
                    wchan = f.read()
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    comm = f.read().strip()
                print(f"  thread {tid} {comm}: {wchan}")
        except OSError:
            pass
        if gdb:
            subprocess.run([gdb, "-p", str(pid), "-batch", "-nx", "-ex", "set pagination off",
                            "-ex", "thread apply all bt 25"], stdin=subprocess.DEVNULL, timeout=120,
                           stderr=subprocess.STDOUT)
    sys.stdout.flush()


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    limit = float(sys.argv[1])
    child = subprocess.Popen(sys.argv[2:], start_new_session=True)
    deadline = time.monotonic() + limit
    while True:
        try:
            return child.wait(timeout=max(0.1, min(5, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            if time.monotonic() < deadline:
                continue
        tree = descendants(child.pid)
        try:
            report(child.pid)
        finally:
            # The run's own group, then whatever it started in groups of their own (servers, say).
            os.killpg(child.pid, signal.SIGKILL)
            for pid in tree:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            child.wait()
        print(f"=== watchdog: killed after {int(limit)} s: {' '.join(sys.argv[2:])}", flush=True)
        return 124


if __name__ == "__main__":
    sys.exit(main())
