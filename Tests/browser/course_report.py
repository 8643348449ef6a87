#!/usr/bin/env python3
"""Opens a course package's index.html in headless Chromium and plays one lecture's player.

Usage: course_report.py COURSE_PACKAGE_DIR
Serves the folder on 127.0.0.1, loads index.html, reads every lecture article (id, status, title),
checks every poster image loaded, starts the first ready lecture's <video> (native HLS) and waits
until it has played past 1.5 s. Prints one JSON line; exit 0 on success.
"""
import json
import sys
import time

from browser import chromium, serve


def main():
    root = sys.argv[1]
    server, base = serve(root)
    url = f"{base}/index.html"
    driver = chromium()
    result = {"url": url}
    ok = False
    try:
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
