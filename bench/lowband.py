#!/usr/bin/env python3
"""The weakest link: what a learner on a 2G/EDGE link gets from a CoursePack package.

For a package made from a source (default: the bench lecture with the default preset):
  - per variant of at most 200 kb/s: declared BANDWIDTH and slide-text OCR recall (Tesseract reading
    frames of the rendition scaled back to the source size, against the same frames of the source;
    recall = share of the source's words, with repeats, that the rendition's OCR also finds);
  - per audio rendition: declared peak and wideband PESQ (PyPI `pesq`) against the source's speech;
  - the slides + audio lecture's bytes, and what that makes for 45 minutes;
  - playback in real headless Chromium (native HLS) over an emulated link (DevTools network emulation
    plus a loopback server throttled to the same rate): first frame, media seconds played per wall
    second after it, stall time, picture sizes played; the median of --runs runs per link.
  - GStreamer's playbin3 (hlsdemux2) and playbin (the older hlsdemux) playing the package to the end over loopback.

Usage: lowband.py [--sources lecture720,dense720] [--runs N] [--links 150:300:45,64:500:60] [--append]
Prints a table; `make bench-lowband` runs it on the bench lecture and appends it to BENCHMARKS.md.
"""
import argparse
import collections
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "Tests" / "browser"))
CACHE = Path(os.environ.get("BENCH_CACHE", Path.home() / ".cache" / "coursepack-bench"))
CP = ROOT / ".build" / "release" / "coursepack"


def ffmpeg9():
    import imageio_ffmpeg
    return imageio_ffmpeg.get_ffmpeg_exe()


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def attrs(text):
    out = {}
    for m in re.finditer(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)', text):
        out[m.group(1)] = m.group(2).strip('"')
    return out


def master_variants(pkg):
    lines = (Path(pkg) / "master.m3u8").read_text().splitlines()
    variants, media = [], []
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF:"):
            a = attrs(line[18:])
            a["URI"] = lines[i + 1].strip()
            variants.append(a)
        elif line.startswith("#EXT-X-MEDIA:"):
            media.append(attrs(line[13:]))
    return variants, media


# ---------- slide text ----------

def words(png):
    text = run(["tesseract", str(png), "stdout", "--psm", "3"], env={**os.environ, "OMP_THREAD_LIMIT": "1"}).stdout
    return collections.Counter(w.lower() for w in re.findall(r"[A-Za-z0-9]{2,}", text))


def frame(ff, src, t, out, w, h):
    run([ff, "-v", "error", "-y", "-ss", f"{t:.3f}", "-i", str(src), "-frames:v", "1",
         "-vf", f"scale={w}:{h}:flags=bicubic", str(out)])


def ocr_recall(src, playlist, times, size, tmp):
    """Share of the source frames' OCR words (with repeats) that the rendition's frames also give."""
    ff = ffmpeg9()  # Debian's FFmpeg 5.1 cannot seek inside an fMP4 HLS playlist
    found = total = 0
    for i, t in enumerate(times):
        a, b = Path(tmp) / f"s{i}.png", Path(tmp) / f"r{i}.png"
        if not a.exists():
            frame(ff, src, t, a, *size)
        frame(ff, playlist, t, b, *size)
        ws, wr = words(a), words(b)
        total += sum(ws.values())
        found += sum(min(n, wr[w]) for w, n in ws.items())
    return found / total if total else float("nan")


# ---------- speech ----------

def pcm16k(ff, src, out, seconds):
    run([ff, "-v", "error", "-y", "-i", str(src), "-t", str(seconds), "-ac", "1", "-ar", "16000", "-f", "s16le", str(out)])
    import numpy as np
    return np.fromfile(out, dtype=np.int16).astype("float32")


def speech_score(src, playlist, tmp, seconds=60):
    """Wideband PESQ (ITU-T P.862.2) of the rendition's speech against the source's."""
    from pesq import pesq
    ff = ffmpeg9()
    ref = pcm16k(ff, src, Path(tmp) / "ref.raw", seconds)
    deg = pcm16k(ff, playlist, Path(tmp) / "deg.raw", seconds)
    n = min(len(ref), len(deg))
    return pesq(16000, ref[:n], deg[:n], "wb")


# ---------- weak-link playback ----------

class Link:
    """A shared link of `kbps` for every response of the loopback server (a token bucket in 1 KB steps)."""

    def __init__(self, kbps):
        self.rate = kbps * 1000 / 8
        self.lock = threading.Lock()
        self.free_at = time.monotonic()

    def send(self, wfile, data):
        step = 1024
        for i in range(0, len(data), step):
            chunk = data[i:i + step]
            with self.lock:
                now = time.monotonic()
                self.free_at = max(self.free_at, now) + len(chunk) / self.rate
                wait = self.free_at - now
            if wait > 0:
                time.sleep(wait)
            wfile.write(chunk)


# --cacheable: serve with Cache-Control as a CDN would (README "Serving a package").
CACHEABLE = False


def throttled_server(directory, link, page):
    import functools
    import http.server
    from browser import Handler

    class Throttled(Handler):
        pages = {"/player.html": page}
        fetched = []

        def do_GET(self):
            p = self.path.split("?")[0]
            if p in self.pages:
                return super().do_GET()
            f = self.translate_path(self.path)
            if not os.path.isfile(f):
                return self.send_error(404)
            data = open(f, "rb").read()
            Throttled.fetched.append((time.monotonic(), p, len(data)))
            self.send_response(200)
            self.send_header("Content-Type", self.guess_type(f))
            self.send_header("Content-Length", str(len(data)))
            if CACHEABLE:
                self.send_header("Cache-Control", "public, max-age=3600")
            self.end_headers()
            try:
                link.send(self.wfile, data)
            except (BrokenPipeError, ConnectionResetError):
                pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Throttled, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}", Throttled.fetched


PAGE = b"""<!doctype html><html><body style="margin:0">
<video id="v" src="master.m3u8" muted autoplay playsinline width="960" height="540"></video>
<script>
const v = document.getElementById('v');
window.log = [];
window.waiting = 0; window.waitStart = null;
v.addEventListener('waiting', () => { window.waitStart = performance.now(); });
v.addEventListener('playing', () => { if (window.waitStart !== null) { window.waiting += performance.now() - window.waitStart; window.waitStart = null; } });
setInterval(() => window.log.push([performance.now(), v.currentTime, v.videoWidth, v.videoHeight, v.readyState]), 250);
</script></body></html>"""


def play_once(pkg, kbps, rtt_ms, seconds):
    from browser import chromium
    link = Link(kbps)
    server, base, fetched = throttled_server(pkg, link, PAGE)
    driver = chromium()
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": False, "latency": rtt_ms, "downloadThroughput": kbps * 1000 / 8,
            "uploadThroughput": kbps * 1000 / 8})
        driver.get(f"{base}/player.html")
        time.sleep(seconds)
        log = driver.execute_script("return window.log")
        err = driver.execute_script("return document.getElementById('v').error && document.getElementById('v').error.message")
    finally:
        driver.quit()
        server.shutdown()
    # log rows: [ms since navigation start, currentTime, videoWidth, videoHeight, readyState], every 250 ms
    first = next((t / 1000 for t, ct, *_ in log if ct > 0), None)
    end_t, end_ct = log[-1][0] / 1000, log[-1][1]
    rate = (end_ct / (end_t - first)) if first is not None and end_t > first else 0.0
    # Stalled: wall time after the first frame during which the media time did not move.
    stalled = 0.0
    for (ta, ca, *_), (tb, cb, *_) in zip(log, log[1:]):
        if first is not None and ta / 1000 >= first and cb <= ca + 1e-3:
            stalled += (tb - ta) / 1000
    sizes = []
    for _, ct, w, h, _ in log:
        s = f"{w}x{h}" if w else "audio"
        if ct > 0 and (not sizes or sizes[-1] != s):
            sizes.append(s)
    variants = []
    for _, p, _ in fetched:
        d = p.strip("/").split("/")[0]
        if p.endswith(".m4s") and (not variants or variants[-1] != d):
            variants.append(d)
    return {"first_frame": first, "played": end_ct, "wall": end_t, "rate_after_first": rate,
            "stalled": stalled, "sizes": sizes, "fetched": variants, "error": err}


def playback(pkg, kbps, rtt, seconds, runs):
    results = [play_once(pkg, kbps, rtt, seconds) for _ in range(runs)]
    med = lambda k: statistics.median([r[k] if r[k] is not None else float("inf") for r in results])
    return {"link": f"{kbps} kb/s, {rtt} ms RTT", "kbps": kbps, "rtt": rtt, "runs": results,
            "first_frame": med("first_frame"), "rate_after_first": med("rate_after_first"),
            "played": med("played"), "wall": med("wall"), "stalled": med("stalled")}


# ---------- GStreamer ----------

def gst_plays_to_end(pkg, runs=3, timeout=120):
    """GStreamer to end of stream over loopback (Tests/browser/gst_play.py), each player on its own and
    without retries: {"playbin3": runs that ended, "playbin": runs that ended}."""
    ended = {}
    for player in ["playbin3", "playbin"]:
        ended[player] = 0
        for _ in range(runs):
            p = subprocess.run([sys.executable, str(ROOT / "Tests" / "browser" / "gst_play.py"), str(pkg), "--timeout", str(timeout),
                                "--players", player, "--retries", "0"], capture_output=True, text=True)
            ended[player] += p.returncode == 0
    return ended


def measure_source(src, preset, max_kbps, tmpdir, package=None):
    pkg = Path(package) if package else Path(tmpdir) / f"pkg-{src.stem}"
    if not package:
        run([str(CP), "transcode", str(src), "-o", str(pkg), "--preset", preset])
    lecture = json.loads((pkg / "lecture.json").read_text())
    duration = lecture["duration"]
    variants, _ = master_variants(pkg)
    v = lecture["source"].get("video") or {}
    src_size = (v.get("displayWidth"), v.get("displayHeight"))
    times = [duration * (i + 0.5) / 8 for i in range(8)]
    frames = Path(tmpdir) / f"frames-{src.stem}"
    frames.mkdir(exist_ok=True)
    out = {"source": src.name, "preset": preset, "package": str(pkg), "duration": duration, "variants": [], "audio": []}
    print(f"{src.name}, preset {preset}: {len(variants)} variants", flush=True)
    for var in variants:
        bw = int(var["BANDWIDTH"])
        entry = {"uri": var["URI"], "bandwidth": bw, "codecs": var.get("CODECS"), "resolution": var.get("RESOLUTION"),
                 "audio": var.get("AUDIO")}
        if var.get("RESOLUTION") and bw <= max_kbps * 1000 and src_size[0]:
            entry["ocr_recall"] = ocr_recall(src, pkg / var["URI"], times, src_size, frames)
        out["variants"].append(entry)
        print(f"  {var['URI']:16} {var.get('RESOLUTION', 'audio'):>9} {bw / 1000:6.1f} kb/s  {var.get('CODECS')}"
              + (f"  OCR recall {entry['ocr_recall']:.3f}" if "ocr_recall" in entry else ""), flush=True)
    # Audio renditions with a playlist of their own, then those muxed into a video rendition only
    # (scored from that rendition's playlist; their bytes are counted in its BANDWIDTH).
    sounds = [{"name": r["name"], "codecs": r["codecs"], "peak": r["peakBitrate"], "average": r["averageBitrate"],
               "playlist": r["playlist"], "in": None} for r in lecture["audio"]]
    for r in lecture["renditions"]:
        if r.get("audio") and r["audio"] not in {a["name"] for a in sounds}:
            sounds.append({"name": r["audio"], "codecs": r["codecs"].split(",")[-1], "peak": None, "average": None,
                           "playlist": r["playlist"], "in": r["name"]})
    for a in sounds:
        a["pesq_wb"] = speech_score(src, pkg / a.pop("playlist"), tmpdir)
        out["audio"].append(a)
        rates = (f"peak {a['peak'] / 1000:5.1f} kb/s  avg {a['average'] / 1000:5.1f} kb/s" if a["peak"] is not None
                 else f"muxed into {a['in']}")
        print(f"  audio {a['name']:4} {a['codecs']:10} {rates}  PESQ-WB {a['pesq_wb']:.2f}", flush=True)
    sa = lecture.get("slidesAndAudio")
    if sa:
        out["slides_and_audio"] = {"bytes": sa["bytes"], "stills": len(sa["stills"]), "per45min_mb": sa["bytes"] / duration * 2700 / 1e6}
        print(f"  slides + audio: {sa['bytes'] / 1e6:.2f} MB for {duration:.0f} s ({len(sa['stills'])} stills)"
              f" = {out['slides_and_audio']['per45min_mb']:.2f} MB per 45 min", flush=True)
    out["gstreamer"] = gst_plays_to_end(pkg)
    print(f"  GStreamer to the end: playbin3 {out['gstreamer']['playbin3']} of 3 runs, playbin {out['gstreamer']['playbin']} of 3", flush=True)
    return out


def markdown(results, command):
    import datetime
    lines = [f"### Weak links, {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC", "", f"`{command}`", ""]
    lines += ["| source | variant | resolution | declared peak incl. audio | CODECS | OCR recall |", "| --- | --- | --- | --- | --- | --- |"]
    for r in results["sources"]:
        for v in r["variants"]:
            ocr = f"{v['ocr_recall']:.3f}" if "ocr_recall" in v else "—"
            lines.append(f"| {r['source']} | {v['uri'].split('/')[0]} | {v['resolution'] or 'audio'} | {v['bandwidth'] / 1000:.1f} kb/s | {v['codecs']} | {ocr} |")
    lines += ["", "| source | audio rendition | codec | peak | average | PESQ-WB |", "| --- | --- | --- | --- | --- | --- |"]
    for r in results["sources"]:
        for a in r["audio"]:
            if a["peak"] is None:
                lines.append(f"| {r['source']} | {a['name']} (in {a['in']}) | {a['codecs']} | — | — | {a['pesq_wb']:.2f} |")
            else:
                lines.append(f"| {r['source']} | {a['name']} | {a['codecs']} | {a['peak'] / 1000:.1f} kb/s | {a['average'] / 1000:.1f} kb/s | {a['pesq_wb']:.2f} |")
    lines += ["", "| source | slides + audio | per 45 min | GStreamer to the end (playbin3, playbin) |", "| --- | --- | --- | --- |"]
    for r in results["sources"]:
        sa = r.get("slides_and_audio")
        lines.append(f"| {r['source']} | {sa['bytes'] / 1e6:.2f} MB, {sa['stills']} stills |" if sa else f"| {r['source']} | — |")
        lines[-1] += (f" {sa['per45min_mb']:.2f} MB |" if sa else " — |") + f" {r['gstreamer']['playbin3']}, {r['gstreamer']['playbin']} of 3 |"
    if results["playback"]:
        lines += ["", f"Chromium (native HLS, 960x540 player) on {results['playback_source']}, DevTools emulation plus a loopback server throttled to the same rate; medians of the runs:", "",
                  "| link | first frame | media per wall second after it | media played / wall | stalled | picture sizes played (each run) |", "| --- | --- | --- | --- | --- | --- |"]
        for p in results["playback"]:
            sizes = "; ".join(" > ".join(r["sizes"]) for r in p["runs"])
            lines.append(f"| {p['link']} | {p['first_frame']:.1f} s | {p['rate_after_first']:.2f} | {p['played']:.1f} s / {p['wall']:.0f} s | {p['stalled']:.1f} s | {sizes} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sources", default="lecture720,dense720", help="bench sources (names in the bench cache)")
    ap.add_argument("--package", help="measure this package of the first source instead of making one")
    ap.add_argument("--preset", default="lecture")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--links", default="150:300:45,64:500:60", help="kbps:rtt_ms:seconds,...")
    ap.add_argument("--max-kbps", type=int, default=110, help="OCR the video variants up to this declared bandwidth")
    ap.add_argument("--skip-playback", action="store_true")
    ap.add_argument("--append", action="store_true", help="append the tables to BENCHMARKS.md")
    ap.add_argument("--cacheable", action="store_true", help="serve every file with Cache-Control: public, max-age=3600")
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()
    global CACHEABLE
    CACHEABLE = a.cacheable
    tmpdir = tempfile.mkdtemp(prefix="cp-lowband-")
    results = {"sources": [], "playback": []}
    for i, name in enumerate(a.sources.split(",")):
        src = CACHE / f"{name}.mp4"
        results["sources"].append(measure_source(src, a.preset, a.max_kbps, tmpdir, a.package if i == 0 else None))
    if not a.skip_playback:
        first = results["sources"][0]
        results["playback_source"] = first["source"]
        for spec in a.links.split(","):
            kbps, rtt, secs = (int(x) for x in spec.split(":"))
            p = playback(first["package"], kbps, rtt, secs, a.runs)
            results["playback"].append(p)
            print(f"  Chromium at {p['link']}: first frame {p['first_frame']:.1f} s, {p['rate_after_first']:.2f} s of media per s after it, "
                  f"played {p['played']:.1f} s of {p['wall']:.0f} s, stalled {p['stalled']:.1f} s (medians of {a.runs})", flush=True)
            for r in p["runs"]:
                print(f"      run: first {r['first_frame']}, rate {r['rate_after_first']:.2f}, stalled {r['stalled']:.1f} s, "
                      f"sizes {' > '.join(r['sizes'])}, segments from {' > '.join(r['fetched'])}", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    if a.append:
        command = " ".join(["python3", "bench/lowband.py"] + sys.argv[1:])
        with open(ROOT / "BENCHMARKS.md", "a") as f:
            f.write("\n" + markdown(results, command))
    return results


if __name__ == "__main__":
    main()
