#!/usr/bin/env python3
"""Plays one HLS URL in one real player for a while and reports what a learner saw, as one JSON line.

Usage: players.py PLAYER URL [--seconds S] [--switch-every S] [--page-base URL]

PLAYER is one of:
- `chromium`: Chromium's native HLS player (`<video src=...>`), through selenium. Besides the
  playback log it returns Chromium's own account of the session: every media request with whether
  the network or the HTTP cache answered it (DevTools `Network` events) and the media log's
  adaptation and error messages (DevTools `Media` events, what chrome://media-internals shows).
- `videojs`: video.js 7.5.5 with its HLS engine (VHS) on Media Source Extensions, from PyPI's
  `js.videojs`; its bandwidth estimate and chosen playlist are logged. `videojs-low`: the same with
  VHS's `enableLowInitialPlaylist` set by the page (start on the lowest variant). With the
  environment variable PLAYER_CONSOLE set, VHS logs at its debug level and the browser console is
  returned under `console` (VHS's own account of each append, sync point and stall).
- `playbin3`, `playbin`: GStreamer's players (hlsdemux2 and the older hlsdemux) with clock-synced
  fake sinks; the position comes from the video sink's buffers as fakesink prints them.
  `playbin3-lw3`: playbin3 as an application runs it with hlsdemux2's `low-watermark-time` set to
  3 s (gst_app.py), instead of its default of 1.5 average segment durations.

Reported: `first_frame` (seconds from the start of loading to the first media time past 0),
`played` (media seconds reached), `rate_after_first` (media seconds per wall second after the first
frame), `stalled` (wall seconds after the first frame in which the media time stood still),
`sizes` (picture sizes in the order shown; `audio` while only sound plays, which counts as
stalled, since the picture stands still), `error`; for GStreamer also `first_picture` (seconds to
the prerolled picture, shown still while the player buffers before its clock starts). With
`--switch-every`, the video element is resized between 192x108 and 1280x720 every S seconds
(Chromium's player never picks a variant larger than its element), so it changes variant at
boundaries all along the lecture.
The player and this script run inside the testbed's network namespace (Tests/browser/testbed.py).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from testbed import stop  # noqa: E402

LOGGER = """
window.log = [];
function watch(v, extra) {
  setInterval(() => window.log.push([performance.now(), v.currentTime, v.videoWidth, v.videoHeight, v.readyState,
                                     v.error ? v.error.code + ' ' + v.error.message : null, extra ? extra() : null]), 250);
  v.addEventListener('ended', () => { window.ended = performance.now(); });
}
"""

NATIVE_PAGE = """<!doctype html><html><body style="margin:0">
<video id="v" muted autoplay playsinline width="960" height="540"></video>
<script>%s
const v = document.getElementById('v');
watch(v);
v.src = new URLSearchParams(location.search).get('src');
</script></body></html>""" % LOGGER

VIDEOJS_PAGE = """<!doctype html><html><head><link href="video-js.min.css" rel="stylesheet"></head>
<body style="margin:0">
<video-js id="v" muted autoplay playsinline width="960" height="540"></video-js>
<script src="video.min.js"></script>
<script>%s
// video.js 7.5.5's VHS reads its options under `hls` (`vhs` from VHS 2); without overrideNative, Chromium's own HLS player plays.
// `low=1` sets VHS's enableLowInitialPlaylist: start on the lowest variant instead of the highest under its 4-Mb/s guess.
const low = new URLSearchParams(location.search).get('low') === '1';
if (new URLSearchParams(location.search).get('debug') === '1') videojs.log.level('debug');
const player = videojs('v', {html5: {hls: {overrideNative: true, enableLowInitialPlaylist: low}, nativeAudioTracks: false, nativeVideoTracks: false}});
player.src({src: new URLSearchParams(location.search).get('src'), type: 'application/x-mpegURL'});
player.play();
window.vjsErrors = [];
player.on('error', () => window.vjsErrors.push(player.error() && player.error().message));
player.ready(() => watch(player.tech().el(), () => {
  const h = player.tech().vhs || player.tech().hls;
  if (!h) return null;
  const m = h.playlists && h.playlists.media();
  return [m ? m.uri || m.resolvedUri : null, Math.round(h.bandwidth || 0), Math.round(h.systemBandwidth || 0)];
}));
</script></body></html>""" % LOGGER


def videojs_resources():
    """video.js 7.5.5 as PyPI's js.videojs ships it: the folder holding video.min.js."""
    import js.videojs
    return Path(js.videojs.__file__).parent / "resources"


def pages():
    """Files the player pages need, as {name: bytes}, for the testbed's web root."""
    res = videojs_resources()
    return {"native.html": NATIVE_PAGE.encode(), "videojs.html": VIDEOJS_PAGE.encode(),
            "video.min.js": (res / "video.min.js").read_bytes(), "video-js.min.css": (res / "video-js.min.css").read_bytes()}


def summarise(rows, start_ms=0.0, duration=None):
    """rows: [wall ms, media s, width, height, ...]; the figures described in the module doc. Rows
    after the media time reached `duration` (the end) do not count."""
    if duration:
        end = next((i for i, r in enumerate(rows) if r[1] >= duration - 0.05), None)
        if end is not None:
            rows = rows[:end + 1]
    first = next((t for t, ct, *_ in rows if ct > 0), None)
    out = {"first_frame": None if first is None else round((first - start_ms) / 1000, 3),
           "played": round(rows[-1][1], 3) if rows else 0.0, "rate_after_first": 0.0, "stalled": 0.0, "sizes": []}
    if first is None:
        return out
    wall = (rows[-1][0] - first) / 1000
    out["rate_after_first"] = round(rows[-1][1] / wall, 3) if wall > 0 else 0.0
    stalled, spans = 0.0, []
    for (ta, ca, *_), (tb, cb, *_) in zip(rows, rows[1:]):
        if ta >= first and cb <= ca + 1e-3:
            stalled += (tb - ta) / 1000
            if spans and abs(spans[-1][1] - ca) < 1e-3 and spans[-1][2] >= ta / 1000 - 1e-3:
                spans[-1][2] = tb / 1000
            else:
                spans.append([round(ta / 1000, 2), round(ca, 3), tb / 1000])
    out["stalled"] = round(stalled, 2)
    # Each stall: [wall s when it began, media time it stood at, wall s it lasted].
    out["stalls"] = [[a, c, round(b - a, 2)] for a, c, b in spans]
    for _, ct, w, h, *_ in rows:
        s = f"{w}x{h}" if w else "audio"
        if ct > 0 and (not out["sizes"] or out["sizes"][-1] != s):
            out["sizes"].append(s)
    return out


def chromium_driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--mute-audio",
              "--autoplay-policy=no-user-gesture-required", "--disable-dev-shm-usage"]:
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    # Chromium's own trace of its HLS player: the "media" category's HLS::* events name each
    # playlist it loads and each variant it selects.
    opts.add_experimental_option("perfLoggingPrefs", {"enableNetwork": True, "enablePage": False,
                                                      "traceCategories": "media"})
    driver = webdriver.Chrome(options=opts, service=Service("/usr/bin/chromedriver"))
    driver.set_page_load_timeout(60)
    return driver


def chromium_trace(entries):
    """Chromium's own account from the DevTools events: media requests and media log messages."""
    requests, media = {}, []
    for e in entries:
        msg = json.loads(e["message"])["message"]
        m, p = msg.get("method", ""), msg.get("params", {})
        if m == "Network.requestWillBeSent":
            url = p["request"]["url"]
            if re.search(r"\.(m4s|mp4|m3u8|m4a)(\?|$)", url):
                requests[p["requestId"]] = {"t": round(p["timestamp"], 3), "url": url.split("/", 3)[-1]}
        elif m == "Network.responseReceived" and p["requestId"] in requests:
            r = p["response"]
            requests[p["requestId"]].update({"status": r.get("status"), "cache": bool(r.get("fromDiskCache") or r.get("fromPrefetchCache")
                                                                                         or r.get("fromServiceWorker"))})
        elif m == "Network.requestServedFromCache" and p["requestId"] in requests:
            requests[p["requestId"]]["cache"] = True
        elif m == "Network.loadingFinished" and p["requestId"] in requests:
            requests[p["requestId"]].update({"done": round(p["timestamp"], 3), "bytes": p.get("encodedDataLength")})
        elif m == "Tracing.dataCollected":
            for ev in p.get("value", []):
                if ev.get("name", "").startswith("HLS::") and ev.get("ph") in ("b", "B", "n", "I"):
                    media.append(f"{ev['name']} {json.dumps(ev.get('args', {}))[:200]}")
        elif m == "Media.playerMessagesLogged":
            for x in p.get("messages", []):
                media.append(x.get("message", "")[:300])
        elif m == "Media.playerPropertiesChanged":
            for x in p.get("properties", []):
                if "hls" in x.get("name", "").lower() or x.get("name") in ("kFramerate", "kVideoPlaybackRoughness"):
                    media.append(f"{x['name']}={str(x.get('value'))[:200]}")
        elif m == "Media.playerErrorsRaised":
            for x in p.get("errors", []):
                media.append(f"error {x.get('errorType')} {x.get('code')}")
    return list(requests.values()), media


def play_browser(kind, url, page_base, seconds, switch_every):
    driver = chromium_driver()
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        try:
            driver.execute_cdp_cmd("Media.enable", {})
        except Exception:  # noqa: BLE001 - an older Chromium without the Media domain still plays
            pass
        page = "native.html" if kind == "chromium" else "videojs.html"
        driver.get(f"{page_base}/{page}?src={url}" + ("&low=1" if kind == "videojs-low" else "") + ("&debug=1" if os.environ.get("PLAYER_CONSOLE") else ""))
        start = time.time()
        throttled = False
        while time.time() - start < seconds:
            time.sleep(min(0.5, seconds - (time.time() - start)) if switch_every is None else switch_every)
            if switch_every is not None:
                # Chromium's HLS player never picks a variant larger than the element it plays in
                # (RenditionManager::SelectBestVariant): resizing the element forces a switch.
                throttled = not throttled
                w, h = (192, 108) if throttled else (1280, 720)
                driver.execute_script(f"const v = document.querySelector('video'); v.width = {w}; v.height = {h};")
            if driver.execute_script("return window.ended !== undefined"):
                break
        rows = driver.execute_script("return window.log")
        ended = driver.execute_script("return window.ended === undefined ? null : window.ended")
        duration = driver.execute_script("const v = document.querySelector('video'); return v ? v.duration : null")
        out = summarise(rows, duration=duration)
        out["ended"] = ended is not None
        out["duration"] = duration
        errors = [r[5] for r in rows if r[5]]
        out["error"] = errors[-1] if errors else None
        if kind in ("videojs", "videojs-low"):
            out["error"] = out["error"] or (driver.execute_script("return window.vjsErrors") or [None])[-1]
            picks = []
            for r in rows:
                if r[6] and r[6][0] and (not picks or picks[-1][0] != r[6][0]):
                    picks.append([r[6][0], r[6][1], round(r[0] / 1000, 2)])
            out["playlists"] = picks
        reqs, media = chromium_trace(driver.get_log("performance"))
        out["requests"] = reqs
        out["media_log"] = media[-80:]
        if os.environ.get("PLAYER_CONSOLE"):
            out["console"] = [[e.get("timestamp"), e.get("message", "")[:400]] for e in driver.get_log("browser")]
        return out
    finally:
        driver.quit()


def play_gst(player, url, seconds):
    cmd = ["gst-launch-1.0", "-v", player, f"uri={url}",
           "video-sink=fakesink name=vs sync=true silent=false", "audio-sink=fakesink name=as sync=true silent=false"]
    if player.startswith("playbin3-lw"):
        # An application's playbin3 with hlsdemux2's low-watermark-time set (gst_app.py, Debian's python3).
        cmd = ["/usr/bin/python3", str(HERE / "gst_app.py"), url, str(seconds + 5), player[len("playbin3-lw"):]]
    start = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    rows, tail, error, ended, size, prerolled = [], [], None, False, None, None
    pts_re = re.compile(r"\((\w+)s?:sink\).*?pts: (\d+):(\d+):([\d.]+)")
    last_media = 0.0
    try:
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(p.stdout, selectors.EVENT_READ)
        while time.time() - start < seconds:
            if not sel.select(timeout=0.5):
                if p.poll() is not None:
                    break
                rows.append([(time.time() - start) * 1000, last_media, 0, 0])
                continue
            line = p.stdout.readline()
            if not line:
                break
            now = (time.time() - start) * 1000
            m = pts_re.search(line)
            if m and m.group(1).startswith("vs"):
                last_media = max(last_media, int(m.group(2)) * 3600 + int(m.group(3)) * 60 + float(m.group(4)))
            elif m and m.group(1).startswith("as") and size is None:
                last_media = max(last_media, int(m.group(2)) * 3600 + int(m.group(3)) * 60 + float(m.group(4)))
            if "(vs:sink) E (type: caps" in line:
                w = re.search(r"width\\?=\\?\(int\\?\)(\d+)", line)
                h = re.search(r"height\\?=\\?\(int\\?\)(\d+)", line)
                if w and h:
                    size = f"{w.group(1)}x{h.group(1)}"
            if "ERROR" in line and error is None:
                error = line.strip()[:300]
            if "Got EOS" in line:
                ended = True
            if prerolled is None and "prerolled" in line.lower():
                prerolled = round(now / 1000, 3)
            tail = (tail + [line.strip()])[-5:]
            if not rows or now - rows[-1][0] >= 250:
                w, h = (int(x) for x in size.split("x")) if size else (0, 0)
                rows.append([now, last_media, w, h])
    finally:
        stop(p)
    out = summarise(rows)
    # The picture a windowed player shows, still, from preroll until its buffering reaches 100%
    # (playbin3: 1.5 average segment durations of media) and the clock starts (`first_frame`).
    out.update({"ended": ended, "error": error, "first_picture": prerolled})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("player", choices=["chromium", "videojs", "videojs-low", "playbin3", "playbin3-lw1", "playbin3-lw3", "playbin"])
    ap.add_argument("url")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--switch-every", type=float)
    ap.add_argument("--page-base", help="where native.html and videojs.html are served (browser players)")
    a = ap.parse_args()
    if a.player in ("chromium", "videojs", "videojs-low"):
        out = play_browser(a.player, a.url, a.page_base, a.seconds, a.switch_every)
    else:
        out = play_gst(a.player, a.url, a.seconds)
    out["player"] = a.player
    print(json.dumps(out))


if __name__ == "__main__":
    main()
