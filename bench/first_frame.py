#!/usr/bin/env python3
"""Time to the first picture in headless Chromium over an emulated weak link, for one package.

Usage: first_frame.py PACKAGE KBPS RTT_MS SECONDS RUNS

Serves PACKAGE through lowband.py's throttled loopback server with Chromium's own network emulation
at the same rate, and prints for each run the first frame counted from the page's navigation start
and from the moment `driver.get` returned, then the medians.
"""
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "Tests" / "browser"))
import lowband  # noqa: E402
from browser import chromium  # noqa: E402


def once(pkg, kbps, rtt, seconds):
    server, base, _ = lowband.throttled_server(pkg, lowband.Link(kbps), lowband.PAGE)
    driver = chromium()
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": False, "latency": rtt, "downloadThroughput": kbps * 125, "uploadThroughput": kbps * 125})
        driver.get(f"{base}/player.html")
        returned = driver.execute_script("return performance.now()") / 1000
        time.sleep(seconds)
        log = driver.execute_script("return window.log")
    finally:
        driver.quit()
        server.shutdown()
    first = next((t / 1000 for t, ct, *_ in log if ct > 0), None)
    return first, returned


def main():
    pkg, kbps, rtt, seconds, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    results = [once(pkg, kbps, rtt, seconds) for _ in range(runs)]
    for first, returned in results:
        shown = "none" if first is None else f"{first:.2f} s"
        print(f"first frame {shown} from navigation start; driver.get returned at {returned:.2f} s")
    firsts = [f if f is not None else float("inf") for f, _ in results]
    print(f"median first frame {statistics.median(firsts):.2f} s from navigation start")


if __name__ == "__main__":
    main()
