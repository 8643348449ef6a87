#!/usr/bin/env python3
"""Plays a package served by nginx over a shaped link in one real player; prints one JSON line.

Usage: delivery.py PACKAGE_DIR --player chromium|videojs|playbin3|playbin [--master master.m3u8]
                   [--kbps 150] [--rtt 300] [--cacheable] [--seconds 60] [--switch-every S]
                   [--expect-end] [--max-stalled S]

Makes a testbed (Tests/browser/testbed.py: a network namespace of its own with nginx and a delayed,
rate-limited loopback link), publishes the package and the player pages, runs the player inside
the namespace (Tests/browser/players.py) and removes everything. Exit 0 when the player showed a
first frame without an error and, with --expect-end, played to the end of the lecture (media time
within 1 s of its duration, or the player's end of stream) with at most --max-stalled seconds
stalled after the first frame.
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from testbed import Testbed  # noqa: E402
import players  # noqa: E402


def zigzag(package):
    """A media playlist that plays segment k from the k-th video rendition in turn (highest, lowest,
    next highest, ...), each with its own EXT-X-MAP: a switch of variant at every boundary, as a player
    makes it, without depending on its adaptation logic. Segment URIs are under p/.

    It opens on the highest rung: Chromium, when its second segment comes from a much larger rung
    before playback has begun, flushes and fetches the segment at the current time again, which
    here is segment 0 with the lowest rung's map, then appends segment 2 without its own map, and
    stalls for good. In a real master (one map per variant playlist) it fetches segment 0 of the
    new variant instead, and plays (`--switch-every`, the odd sources' test)."""
    pkg = Path(package)
    rungs = sorted((d.name for d in pkg.iterdir() if d.is_dir() and d.name.startswith("v") and (d / "index.m3u8").exists()),
                   key=lambda n: int(n[1:]) if n[1:].isdigit() else 0)
    if not rungs:
        raise SystemExit(f"{package}: no video renditions")
    order = [rungs[-1 - i // 2] if i % 2 == 0 else rungs[i // 2] for i in range(len(rungs))]
    lists = {}
    for r in rungs:
        text = (pkg / r / "index.m3u8").read_text().splitlines()
        segs, extinf = [], None
        for line in text:
            if line.startswith("#EXTINF:"):
                extinf = line
            elif line and not line.startswith("#"):
                segs.append((extinf, line))
        lists[r] = (segs, next(l for l in text if l.startswith("#EXT-X-TARGETDURATION")))
    n = len(lists[rungs[0]][0])
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", lists[rungs[0]][1], "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD",
             "#EXT-X-INDEPENDENT-SEGMENTS"]
    for k in range(n):
        r = order[k % len(order)]
        extinf, uri = lists[r][0][k]
        lines += [f'#EXT-X-MAP:URI="p/{r}/init.mp4"', extinf, f"p/{r}/{uri}"]
    return "\n".join(lines + ["#EXT-X-ENDLIST", ""])


def play(package, player, master="master.m3u8", kbps=150, rtt=300, cacheable=False, seconds=60, switch_every=None,
         testbed=None):
    """One run; returns the player's JSON plus the requests nginx served. Reuses `testbed` if given."""
    own = testbed is None
    tb = testbed or Testbed(kbps, rtt, cacheable=cacheable).__enter__()
    try:
        tb.publish("p", package)
        for name, data in players.pages().items():
            tb.add_file(name, data)
        url = tb.url(f"p/{master}")
        if master == "zigzag":
            tb.add_file("zigzag.m3u8", zigzag(package))
            url = tb.url("zigzag.m3u8")
        since = tb.mark()
        cmd = [sys.executable, str(HERE / "players.py"), player, url, "--seconds", str(seconds),
               "--page-base", tb.page_url().rstrip("/")]
        if switch_every:
            cmd += ["--switch-every", str(switch_every)]
        r = tb.run(cmd, timeout=seconds + 120)
        try:
            out = json.loads(r.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            out = {"player": player, "error": f"player did not report (exit {r.returncode}): {r.stderr[-600:]}",
                   "first_frame": None, "played": 0, "rate_after_first": 0, "stalled": 0, "sizes": []}
        served = tb.requests(since)
        out["served"] = [[round(x["t"], 2), x["status"], x["bytes"], x["path"].replace("/p/", "", 1)] for x in served
                         if x["path"].startswith("/p/")]
        return out
    finally:
        if own:
            tb.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("package")
    ap.add_argument("--player", required=True, choices=["chromium", "videojs", "videojs-low", "playbin3", "playbin3-lw1", "playbin3-lw3", "playbin"])
    ap.add_argument("--master", default="master.m3u8",
                    help="the playlist to play, under the package; `zigzag`: a switch of variant at every segment boundary")
    ap.add_argument("--kbps", type=int, default=150)
    ap.add_argument("--rtt", type=int, default=300)
    ap.add_argument("--cacheable", action="store_true")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--switch-every", type=float)
    ap.add_argument("--expect-end", action="store_true")
    ap.add_argument("--max-stalled", type=float, default=1.0)
    a = ap.parse_args()
    out = play(a.package, a.player, a.master, a.kbps, a.rtt, a.cacheable, a.seconds, a.switch_every)
    duration = out.get("duration")
    ok = out.get("first_frame") is not None and not out.get("error")
    if a.expect_end:
        reached = out.get("ended") or (duration and out.get("played", 0) >= duration - 1.0)
        ok = ok and bool(reached) and out.get("stalled", 0) <= a.max_stalled
    out["ok"] = bool(ok)
    print(json.dumps(out))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
