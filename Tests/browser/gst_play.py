#!/usr/bin/env python3
"""Plays an HLS package to the end with GStreamer's playbin (its adaptive demuxer) over loopback HTTP.

Usage: gst_play.py PACKAGE_DIR [--timeout S] [--realtime] [--master NAME]
Fake sinks; without --realtime they run as fast as the pipeline allows. Prints one JSON line; exit 0
when playbin reached end of stream without an error within the timeout.
"""
import argparse
import json
import subprocess
import sys
import time

from browser import serve


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("package")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--realtime", action="store_true")
    ap.add_argument("--master", default="master.m3u8")
    a = ap.parse_args()
    server, base = serve(a.package)
    sync = "true" if a.realtime else "false"
    cmd = ["gst-launch-1.0", "-q", "playbin", f"uri={base}/{a.master}",
           f"video-sink=fakesink sync={sync}", f"audio-sink=fakesink sync={sync}"]
    start = time.time()
    result = {"uri": f"{base}/{a.master}"}
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout)
        result.update(exit=p.returncode, output=(p.stdout + p.stderr)[-400:])
        ok = p.returncode == 0 and "ERROR" not in p.stdout + p.stderr
    except subprocess.TimeoutExpired:
        result.update(exit=None, output=f"no end of stream within {a.timeout} s")
        ok = False
    finally:
        server.shutdown()
    result["seconds"] = round(time.time() - start, 2)
    result["ok"] = ok
    print(json.dumps(result))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
