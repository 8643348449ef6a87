#!/usr/bin/env python3
"""Plays an HLS package in headless Chromium (native HLS) and seeks.

Usage: play_hls.py PACKAGE_DIR [SEEK_SECONDS]
Serves PACKAGE_DIR on 127.0.0.1 with a small player page, plays master.m3u8 for a few seconds,
seeks, and checks playback resumes past the seek point. Prints one JSON line; exit 0 on success.
"""
import json
import sys
import time

from browser import chromium, serve

PAGE = b"""<!doctype html><html><body>
<video id="v" src="master.m3u8" muted autoplay playsinline width="640"></video>
<script>
const v = document.getElementById('v');
window.events = [];
for (const e of ['loadedmetadata', 'playing', 'seeking', 'seeked', 'error', 'stalled', 'ended'])
  v.addEventListener(e, () => window.events.push([e, v.currentTime]));
</script></body></html>"""


def wait_for(driver, script, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if driver.execute_script(script):
            return True
        time.sleep(0.2)
    return False


def main():
    pkg = sys.argv[1]
    seek_to = float(sys.argv[2]) if len(sys.argv) > 2 else 12.0
    server, base = serve(pkg, {"/player.html": PAGE})
    url = f"{base}/player.html"
    driver = chromium()
    result = {"url": url}
    ok = False
    try:
        driver.get(url)
        v = "document.getElementById('v')"
        result["canPlayType"] = driver.execute_script(f"return {v}.canPlayType('application/vnd.apple.mpegurl')")
        played = wait_for(driver, f"return {v}.currentTime > 3", 40)
        result["played"] = played
        result["videoWidth"] = driver.execute_script(f"return {v}.videoWidth")
        result["duration"] = driver.execute_script(f"return {v}.duration")
        if played:
            driver.execute_script(f"{v}.currentTime = {seek_to}")
            result["resumed"] = wait_for(driver, f"return {v}.currentTime > {seek_to + 1.5} && !{v}.seeking", 40)
        result["time"] = driver.execute_script(f"return {v}.currentTime")
        result["error"] = driver.execute_script(f"return {v}.error && {v}.error.message")
        result["events"] = driver.execute_script("return window.events")
        ok = bool(played and result.get("resumed") and not result["error"])
    finally:
        driver.quit()
        server.shutdown()
    print(json.dumps(result))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
