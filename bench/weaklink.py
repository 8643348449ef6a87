#!/usr/bin/env python3
"""Delivery as learners meet it: packages served by nginx over shaped links, played by real players.

Usage: weaklink.py [--sources lecture720,dense720] [--runs 3] [--seconds 50]
                   [--links 150:300,64:500] [--configs default,cacheable] [--masters master,lite,min]
                   [--players chromium,playbin3-lw1] [--plan lecture720:chromium:3,...] [--append]

Each source (bench/make_sources.sh's, in ~/.cache/coursepack-bench) is packaged with the default
preset by the built coursepack; then for every nginx configuration (`default`: nginx's own static
headers, Last-Modified and ETag; `cacheable`: also Cache-Control: public, max-age=3600, as a CDN
configuration would) and link (KBPS:RTT_MS) a testbed (Tests/browser/testbed.py) serves it, and
each player plays each master for --seconds, --runs times, a fresh player each time. Reported per
cell: medians of the first frame (s from the start of loading), media seconds per wall second after
it, stalled seconds, and the pictures shown in the median run. `--plan SOURCE:PLAYER:RUNS` overrides
the runs for one source and player (0 skips it). Results go to bench/results/weaklink.json; with
--append the table is added to BENCHMARKS.md with the command that made it.
"""
import argparse
import datetime
import json
import os
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "Tests" / "browser"))
import delivery  # noqa: E402
from testbed import Testbed  # noqa: E402

CACHE = Path.home() / ".cache" / "coursepack-bench"
TARGETS = {("lite", 150): (5.0, 0.95), ("min", 64): (8.0, 0.90), ("master", 150): (None, 0.95)}


def binary():
    for b in (ROOT / ".build/release/coursepack", ROOT / ".build/debug/coursepack"):
        if b.exists():
            return b
    raise SystemExit("build coursepack first (make build)")


def package(source, preset="lecture"):
    out = CACHE / "weaklink" / source
    src = CACHE / f"{source}.mp4"
    if not src.exists():
        raise SystemExit(f"{src} is missing: run bench/make_sources.sh")
    subprocess.run(["rm", "-rf", str(out)], check=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([str(binary()), "transcode", str(src), "-o", str(out), "--preset", preset], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"transcode {src}: {r.stderr}")
    return out


def median(runs, key):
    vals = [r.get(key) if r.get(key) is not None else float("inf") for r in runs]
    return statistics.median(vals) if vals else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sources", default="lecture720,dense720")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=50)
    ap.add_argument("--links", default="150:300,64:500")
    ap.add_argument("--configs", default="default,cacheable")
    ap.add_argument("--masters", default="master,lite,min")
    ap.add_argument("--players", default="chromium,playbin3-lw1")
    ap.add_argument("--plan", default="", help="SOURCE:PLAYER:RUNS,... overriding --runs")
    ap.add_argument("--cells", default="", help="MASTER@KBPS,... to measure only these master/link pairs")
    ap.add_argument("--preset", default="lecture", help="preset name or JSON file to package with")
    ap.add_argument("--append", action="store_true")
    ap.add_argument("--from-json", help="render the table of earlier runs' results files (comma-separated) instead of measuring")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "weaklink.json"),
                    help="results file (give each of several concurrent runs its own)")
    a = ap.parse_args()
    if a.from_json:
        results = [r for f in a.from_json.split(",") for r in json.loads(Path(f).read_text())]
        for r in results:
            if r.get("peak") is None:
                lec = json.loads((CACHE / "weaklink" / r["source"] / "lecture.json").read_text())
                r["peak"] = {Path(m["playlist"]).stem: m["peakBitrate"] for m in lec["masters"]}.get(r["master"])
        return report(results, a)
    plan = {}
    for item in filter(None, a.plan.split(",")):
        s, p, n = item.split(":")
        plan[(s, p)] = int(n)
    cells = {tuple(c.split("@")) for c in filter(None, a.cells.split(","))}
    results = []
    for source in a.sources.split(","):
        pkg = package(source, a.preset)
        lecture = json.loads((pkg / "lecture.json").read_text())
        peaks = {Path(m["playlist"]).stem: m["peakBitrate"] for m in lecture["masters"]}
        for config in a.configs.split(","):
            for link in a.links.split(","):
                kbps, rtt = (int(x) for x in link.split(":"))
                with Testbed(kbps, rtt, cacheable=config == "cacheable") as tb:
                    for master in a.masters.split(","):
                        if cells and (master, str(kbps)) not in cells:
                            continue
                        for player in a.players.split(","):
                            n = plan.get((source, player), a.runs)
                            runs = [delivery.play(pkg, player, f"{master}.m3u8", seconds=a.seconds, testbed=tb) for _ in range(n)]
                            if not runs:
                                continue
                            mid = sorted(runs, key=lambda r: r.get("rate_after_first") or 0)[len(runs) // 2]
                            row = {"source": source, "config": config, "kbps": kbps, "rtt": rtt, "master": master,
                                   "peak": peaks.get(master), "player": player, "runs": len(runs),
                                   "first_frame": median(runs, "first_frame"), "rate": median(runs, "rate_after_first"),
                                   "first_picture": median(runs, "first_picture") if player.startswith("playbin") else None,
                                   "stalled": median(runs, "stalled"), "sizes": mid.get("sizes"),
                                   "errors": [r.get("error") for r in runs if r.get("error")],
                                   "cache_hits": [sum(1 for q in r.get("requests", []) if q.get("cache")) for r in runs],
                                   "detail": runs}
                            results.append(row)
                            print(json.dumps({k: v for k, v in row.items() if k != "detail"}), flush=True)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    report(results, a)


def report(results, a):
    command = "python3 bench/weaklink.py " + " ".join(shlex.quote(x) for x in sys.argv[1:])
    lines = ["", f"### Delivery over nginx and shaped links ({datetime.date.today()})", "",
             f"`{command}` (`make bench-weaklink`), CoursePack at {subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True, cwd=ROOT).stdout.strip()}. "
             "nginx 1.22 in a network namespace; the link: htb at the rate each way with a 2-s FIFO, half the RTT "
             "(plus 10% jitter) each way in a relay; `cacheable` adds Cache-Control: public, max-age=3600. "
             "First frame from the start of loading; rate = media s per wall s after it; medians of the runs.", "",
             "| source | nginx | link | master (peak) | player | runs | first frame | rate | stalled s | pictures (median run) | cache hits | target |",
             "| --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | --- | --- | --- |"]
    for r in results:
        t = TARGETS.get((r["master"], r["kbps"]))
        verdict = ""
        if t:
            ok = (t[0] is None or (r["first_frame"] is not None and r["first_frame"] <= t[0])) and (r["rate"] or 0) >= t[1]
            verdict = ("met" if ok else "missed") + f" ({'ff ≤ %g s, ' % t[0] if t[0] else ''}≥ {t[1]})"
        ff = "none" if r["first_frame"] in (None, float("inf")) else f"{r['first_frame']:.1f}"
        if r.get("first_picture") not in (None, float("inf")):
            ff += f" (still {r['first_picture']:.1f})"
        lines.append(f"| {r['source']} | {r['config']} | {r['kbps']} kb/s, {r['rtt']} ms | {r['master']} ({(r['peak'] or 0) // 1000} kb/s) | "
                     f"{r['player']} | {r['runs']} | {ff} | {r['rate']:.2f} | {r['stalled']:.1f} | {' → '.join(r['sizes'] or [])} | "
                     f"{r['cache_hits']} | {verdict} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.append:
        with open(ROOT / "BENCHMARKS.md", "a") as f:
            f.write(text)


if __name__ == "__main__":
    main()
