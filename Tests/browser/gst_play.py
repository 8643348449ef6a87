#!/usr/bin/env python3
"""Plays an HLS package to the end with GStreamer over loopback HTTP.

Usage: gst_play.py PACKAGE_DIR [--timeout S] [--realtime] [--master NAME] [--players playbin3,playbin]
                   [--retries N] [--delay S]

Each player named plays the package to end of stream: `playbin3`, whose adaptive demuxer is
hlsdemux2 (GStreamer's current one), and `playbin`, whose decodebin2 takes the older hlsdemux. Fake
sinks; without --realtime they run as fast as the pipeline allows. Prints one JSON line; exit 0
when every player reached end of stream without an error within the timeout.

The older hlsdemux (GStreamer 1.22) sometimes never reaches end of stream: with every response
delayed by 0-2 s at random (--delay 2), `playbin` hung in 3 runs of 30 on the 9-s package of
TranscodeTests.variableFrameRateWithLateStart, `playbin3` in none of 30 (BENCHMARKS.md, "GStreamer's
two HLS demuxers"); the one hung run logged with GST_DEBUG had switched variant after the first
segment and stopped after fetching the last segment of the variant it switched to. So a `playbin`
run that hangs (no end of stream, no error) is tried again up to --retries times (default 1), and
the JSON lists every run; an error, or a hang on the last try, fails.
"""
import argparse
import json
import subprocess
import sys
import time

from browser import serve


def play(player, uri, sync, timeout):
    """One run: (ok, what happened)."""
    cmd = ["gst-launch-1.0", "-q", player, f"uri={uri}",
           f"video-sink=fakesink sync={sync}", f"audio-sink=fakesink sync={sync}"]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"no end of stream within {timeout} s"
    out = (p.stdout + p.stderr)[-400:]
    return p.returncode == 0 and "ERROR" not in p.stdout + p.stderr, f"exit {p.returncode}: {out}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("package")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--realtime", action="store_true")
    ap.add_argument("--master", default="master.m3u8")
    ap.add_argument("--players", default="playbin3,playbin")
    ap.add_argument("--retries", type=int, default=1)
    ap.add_argument("--delay", type=float, default=0, help="delay each response by a random 0 to S seconds")
    a = ap.parse_args()
    server, base = serve(a.package, delay=a.delay)
    uri = f"{base}/{a.master}"
    sync = "true" if a.realtime else "false"
    start = time.time()
    result = {"uri": uri, "players": {}}
    try:
        for player in a.players.split(","):
            runs = []
            for attempt in range(1 + (a.retries if player == "playbin" else 0)):
                t = time.time()
                ok, what = play(player, uri, sync, a.timeout)
                runs.append({"ok": bool(ok), "seconds": round(time.time() - t, 2), "output": what if not ok else ""})
                if ok is not None:  # ended, well or with an error: no second try
                    break
            result["players"][player] = runs
    finally:
        server.shutdown()
    result["seconds"] = round(time.time() - start, 2)
    result["ok"] = all(runs[-1]["ok"] for runs in result["players"].values())
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
