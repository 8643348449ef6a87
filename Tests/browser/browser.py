"""What the browser checks share: a loopback HTTP server for a folder, and headless Chromium."""
import functools
import random
import time
import http.server
import threading

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder with the HLS media types; `pages` maps extra paths to HTML."""
    pages = {}

    delay = 0.0

    def do_GET(self):
        if self.delay > 0:
            time.sleep(random.uniform(0, self.delay))
        page = self.pages.get(self.path.split("?")[0])
        if page is not None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
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


class Server(http.server.ThreadingHTTPServer):
    # A player opens several connections at once; under a loaded test run the default backlog of 5
    # is not always accepted in time.
    request_queue_size = 64
    daemon_threads = True


def serve(directory, pages=None, delay=0.0):
    """Starts a server for `directory` on 127.0.0.1; returns (server, base URL). With `delay`, each
    response waits a random 0 to `delay` seconds first (a loaded server or a jittery link)."""
    handler = type("PageHandler", (Handler,), {"pages": pages or {}, "delay": delay})
    server = Server(("127.0.0.1", 0), functools.partial(handler, directory=directory))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def chromium():
    """Headless Chromium from Debian's packages, allowed to autoplay."""
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--mute-audio",
              "--autoplay-policy=no-user-gesture-required", "--disable-dev-shm-usage"]:
        opts.add_argument(a)
    driver = webdriver.Chrome(options=opts, service=Service("/usr/bin/chromedriver"))
    driver.set_page_load_timeout(30)
    return driver
