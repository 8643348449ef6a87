#!/usr/bin/env python3
"""Which of a package's variants headless Chromium can decode, and what it plays.

Usage: codecs.py PACKAGE_DIR [MASTER]
Serves PACKAGE_DIR on 127.0.0.1, asks Chromium's MediaSource.isTypeSupported about every variant's
CODECS (as its HLS player does), then plays MASTER (default master.m3u8) natively for a few seconds and
records which rendition folders it fetched segments from. Prints one JSON line; exit 0 when it played
past 3 s with sound and picture and no error.
"""
import functools
import http.server
import json
import re
import sys
import threading
import time

from browser import Handler, chromium

PAGE = """<!doctype html><html><body>
<video id="v" src="%s" muted autoplay playsinline width="960" height="540"></video>
</body></html>"""


def main():
    pkg = sys.argv[1]
    master = sys.argv[2] if len(sys.argv) > 2 else "master.m3u8"
    fetched = []

    class Logging(Handler):
        pages = {"/player.html": (PAGE % master).encode()}

        def do_GET(self):
            fetched.append(self.path.split("?")[0])
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Logging, directory=pkg))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    lines = open(f"{pkg}/{master}").read().splitlines()
    variants = []
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF:"):
            codecs = re.search(r'CODECS="([^"]*)"', line).group(1)
            variants.append({"uri": lines[i + 1].strip(), "codecs": codecs})
    driver = chromium()
    result = {"variants": variants}
    try:
        driver.get(f"{base}/player.html")
        for v in variants:
            v["supported"] = driver.execute_script(
                "return MediaSource.isTypeSupported(arguments[0])", f'video/mp4; codecs="{v["codecs"]}"')
        end = time.time() + 40
        v = "document.getElementById('v')"
        while time.time() < end and not driver.execute_script(f"return {v}.currentTime > 3"):
            time.sleep(0.2)
        result["time"] = driver.execute_script(f"return {v}.currentTime")
        result["videoWidth"] = driver.execute_script(f"return {v}.videoWidth")
        result["audioDecodedBytes"] = driver.execute_script(f"return {v}.webkitAudioDecodedByteCount")
        result["error"] = driver.execute_script(f"return {v}.error && {v}.error.message")
    finally:
        driver.quit()
        server.shutdown()
    result["segmentsFrom"] = sorted({p.strip("/").split("/")[0] for p in fetched if p.endswith(".m4s")})
    print(json.dumps(result))
    ok = result["time"] > 3 and result["videoWidth"] > 0 and result["audioDecodedBytes"] > 0 and not result["error"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
