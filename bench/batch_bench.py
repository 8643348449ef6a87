#!/usr/bin/env python3
"""Batch throughput of `coursepack batch` with 1, 2 and 3 workers.

Builds a course folder once (cached beside the bench sources): four 30 s lectures cut from the
2-minute 720p lecture and two 30 s lectures cut from the 1080p screencast (stream copy at
keyframes, made with the ffmpeg program, which only prepares inputs), plus one file of random
bytes that must fail. Then, alternating worker counts in one invocation, runs the batch into a
fresh folder and measures wall time and CPU time of the batch and its workers (getrusage of the
children). Prints a table and appends it to BENCHMARKS.md.
"""
import argparse
import datetime
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("BENCH_CACHE", Path.home() / ".cache" / "coursepack-bench"))
CP = ROOT / ".build" / "release" / "coursepack"


def make_course():
    course = CACHE / "course-v1"
    if (course / "done").exists():
        return course
    if course.exists():
        shutil.rmtree(course)
    course.mkdir(parents=True)
    cuts = [("lecture720.mp4", 0, "01 Welcome"), ("lecture720.mp4", 30, "02 Sorting"), ("lecture720.mp4", 60, "03 Searching"),
            ("lecture720.mp4", 90, "04 Graphs"), ("screencast1080.mp4", 0, "05 Coding session"),
            ("screencast1080.mp4", 30, "06 Debugging")]
    for src, start, name in cuts:
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-ss", str(start), "-i", str(CACHE / src), "-t", "30",
                        "-c", "copy", "-movflags", "+faststart", str(course / f"{name}.mp4")], check=True)
    (course / "07 Corrupt upload.mp4").write_bytes(os.urandom(200_000))
    (course / "done").write_text("")
    return course


def run_batch(course, workers):
    out = Path(tempfile.mkdtemp(prefix="cp-batch-bench-")) / "pkg"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.run([str(CP), "batch", str(course), "-o", str(out), "--workers", str(workers), "--json"],
                       capture_output=True, text=True)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    events = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    done = next(e for e in events if e["event"] == "batch-finished")
    manifest = json.loads((out / "manifest.json").read_text())
    media = sum(l["lecture"]["duration"] for l in manifest["lectures"] if l["status"] == "ready")
    shutil.rmtree(out.parent)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "ready": done["ready"], "failed": done["failed"], "media": media, "rc": p.returncode}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--workers", default="1,2,3")
    ap.add_argument("--no-record", action="store_true", help="print only; do not append to BENCHMARKS.md")
    args = ap.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    course = make_course()
    runs = {w: [] for w in counts}
    for r in range(args.repeats):
        for w in (counts if r % 2 == 0 else list(reversed(counts))):
            res = run_batch(course, w)
            print(f"workers {w}: wall {res['wall']:.1f} s, cpu {res['cpu']:.1f} s, ready {res['ready']}, failed {res['failed']}",
                  file=sys.stderr)
            runs[w].append(res)
    base = statistics.median(x["wall"] for x in runs[counts[0]])
    lines = [f"## {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC — batch throughput (`python3 bench/batch_bench.py --repeats {args.repeats}`)",
             "",
             f"Machine: {os.cpu_count()} cores. Course: six 30 s lectures (four 720p slide lectures, two 1080p screencasts) "
             "and one file of random bytes; preset `lecture`; fresh output folder each run; runs alternate.",
             "",
             "| workers | wall s (median) | CPU s (median) | media s / wall s | lectures ready / failed | wall vs 1 worker |",
             "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    for w in counts:
        wall = statistics.median(x["wall"] for x in runs[w])
        cpu = statistics.median(x["cpu"] for x in runs[w])
        media = runs[w][0]["media"]
        lines.append(f"| {w} | {wall:.1f} | {cpu:.1f} | {media / wall:.2f} | {runs[w][0]['ready']} / {runs[w][0]['failed']} | {wall / base:.2f} |")
    best = min(counts, key=lambda w: statistics.median(x["wall"] for x in runs[w]))
    lines += ["", f"Fastest: {best} worker{'s' if best != 1 else ''}.", ""]
    text = "\n".join(lines)
    print(text)
    if not args.no_record:
        with open(ROOT / "BENCHMARKS.md", "a") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
