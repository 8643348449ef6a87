#!/usr/bin/env python3
"""Plays an HLS package in headless Chromium (native HLS) and seeks.

Usage: play_hls.py PACKAGE_DIR [SEEK_SECONDS]
Serves PACKAGE_DIR on 127.0.0.1 with a small player page, plays master.m3u8 for a few seconds,
seeks, and checks playback resumes past the seek point. Prints one JSON line; exit 0 on success.
"""
import functools
import http.server
import json
import sys
import threading
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

PAGE = b"""<!doctype html><html><body>
<video id="v" src="master.m3u8" muted autoplay playsinline width="640"></video>
<script>
const v = document.getElementById('v');
window.events = [];
for (const e of ['loadedmetadata', 'playing', 'seeking', 'seeked', 'error', 'stalled', 'ended'])
  v.addEventListener(e, () => window.events.push([e, v.currentTime]));
</script></body></html>"""


class Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/player.html"):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)
            return
        super().do_GET()

    def guess_type(self, path):
        if str(path).endswith(".m3u8"):
            return "application/vnd.apple.mpegurl"
        if str(path).endswith((".m4s", ".mp4")):
            return "video/mp4"
        return super().guess_type(path)

    def log_message(self, *args):
        pass


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
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=pkg))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/player.html"

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--mute-audio",
              "--autoplay-policy=no-user-gesture-required", "--disable-dev-shm-usage"]:
        opts.add_argument(a)
    driver = webdriver.Chrome(options=opts, service=Service("/usr/bin/chromedriver"))
    result = {"url": url}
    ok = False
    try:
        driver.set_page_load_timeout(30)
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
