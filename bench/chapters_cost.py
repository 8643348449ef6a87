#!/usr/bin/env python3
"""What chapter detection and OCR cost a transcode: wall and CPU of `coursepack transcode` on a bench
source with everything, with chapters but no OCR (`--ocr-languages ""`), and with renditions only,
run in turn (A, B, C, A, B, C, ...) so that a noisy machine weighs on each alike.

    python3 bench/chapters_cost.py [--source lecture720] [--repeats 3]
"""
import argparse, os, statistics, subprocess, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("BENCH_CACHE", os.path.expanduser("~/.cache/coursepack-bench"))
BIN = os.path.join(ROOT, ".build/release/coursepack")
MODES = {"full": [], "no OCR": ["--ocr-languages", ""], "renditions only": ["--renditions-only"]}


def timed(cmd):
    with tempfile.NamedTemporaryFile() as t:
        subprocess.run(["/usr/bin/time", "-f", "%e %U %S", "-o", t.name] + cmd, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall, user, sys_ = map(float, open(t.name).read().split()[-3:])
    return wall, user + sys_


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", default="lecture720")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    src = os.path.join(CACHE, args.source + ".mp4")
    out = tempfile.mkdtemp(prefix="cp-cost-")
    runs = {m: [] for m in MODES}
    for r in range(args.repeats):
        for mode, extra in MODES.items():
            runs[mode].append(timed([BIN, "transcode", src, "-o", os.path.join(out, "pkg")] + extra))
            print(f"  run {r + 1} {mode}: wall {runs[mode][-1][0]:.1f} s, CPU {runs[mode][-1][1]:.1f} s", flush=True)
    base = statistics.median(w for w, _ in runs["renditions only"])
    print(f"\n{args.source}, medians of {args.repeats} (`python3 bench/chapters_cost.py --source {args.source} --repeats {args.repeats}`):\n")
    print("| run | wall s | CPU s | wall vs renditions only |")
    print("| --- | ---: | ---: | ---: |")
    for mode in MODES:
        w = statistics.median(x for x, _ in runs[mode])
        c = statistics.median(x for _, x in runs[mode])
        print(f"| {mode} | {w:.1f} | {c:.1f} | {w / base:.3f} |")
    subprocess.run(["rm", "-rf", out])


if __name__ == "__main__":
    main()
