#!/usr/bin/env python3
"""Opens a course package's index.html in headless Chromium and plays one lecture's player.

Usage: course_report.py COURSE_PACKAGE_DIR
Serves the folder on 127.0.0.1, loads index.html, reads every lecture article (id, status, title),
checks every poster image loaded, starts the first ready lecture's <video> (native HLS) and waits
until it has played past 1.5 s. Prints one JSON line; exit 0 on success.
"""
import functools
import http.server
import json
import sys
import threading
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


class Handler(http.server.SimpleHTTPRequestHandler):
    def guess_type(self, path):
        if str(path).endswith(".m3u8"):
            return "application/vnd.apple.mpegurl"
        if str(path).endswith((".m4s", ".mp4")):
            return "video/mp4"
        return super().guess_type(path)

    def log_message(self, *args):
        pass


def main():
    root = sys.argv[1]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=root))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
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
        result["title"] = driver.title
        result["lectures"] = driver.execute_script(
            "return [...document.querySelectorAll('article.lecture')].map(a => "
            "({id: a.id.replace('lecture-', ''), status: a.dataset.status, title: a.querySelector('h2').textContent}))")
        result["failures"] = driver.execute_script(
            "return [...document.querySelectorAll('#failures li')].map(li => li.textContent)")
        ready = [l for l in result["lectures"] if l["status"] == "ready"]
        if ready:
            vid = f"document.getElementById('player-{ready[0]['id']}')"
            driver.execute_script(f"{vid}.muted = true; {vid}.play()")
            end = time.time() + 40
            while time.time() < end and not driver.execute_script(f"return {vid}.currentTime > 1.5"):
                time.sleep(0.2)
            result["played"] = driver.execute_script(f"return {vid}.currentTime")
            result["videoWidth"] = driver.execute_script(f"return {vid}.videoWidth")
            result["error"] = driver.execute_script(f"return {vid}.error && {vid}.error.message")
            ok = result["played"] > 1.5 and result["videoWidth"] > 0
        result["brokenImages"] = driver.execute_script(
            "return [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
        ok = ok and not result["brokenImages"]
    finally:
        driver.quit()
        server.shutdown()
    result["ok"] = ok
    print(json.dumps(result))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
