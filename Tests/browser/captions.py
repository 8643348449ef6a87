#!/usr/bin/env python3
"""Plays an HLS package in headless Chromium through video.js 7.5.5 (VHS, from PyPI's js.videojs;
Chromium's own HLS player exposes no subtitle tracks) with every subtitle track showing, and reports
the cues that become active, with the playback time at which each was first seen.

Usage: captions.py PACKAGE_DIR [SECONDS]
Prints one JSON object: {"tracks": [[kind, label, language], ...], "cues": [[time, start, end, text], ...],
"error": ...}; exit 0 when at least one cue became active.
"""
import json
import sys
import time

from browser import chromium, serve
from players import videojs_resources

PAGE = """<!doctype html><html><head><link href="video-js.min.css" rel="stylesheet"></head><body>
<video-js id="v" muted autoplay playsinline width="640" height="360"></video-js>
<script src="video.min.js"></script>
<script>
window.seen = [];
window.failure = null;
const player = videojs('v', {html5: {hls: {overrideNative: true}, vhs: {overrideNative: true}, nativeAudioTracks: false, nativeVideoTracks: false,
                                     nativeTextTracks: false}});
player.on('error', () => { window.failure = player.error() ? player.error().message : 'error'; });
// Subtitles are turned on once playback has begun, as a learner would: VHS loads a subtitle
// playlist on the text tracks' change event.
player.one('playing', () => {
  const tracks = player.textTracks();
  for (let i = 0; i < tracks.length; i++)
    if (tracks[i].kind === 'subtitles' || tracks[i].kind === 'captions') { tracks[i].mode = 'showing'; break; }
});
// Active cues, looked at every 100 ms (the emulated tracks of video.js update on timeupdate).
setInterval(() => {
  const tracks = player.textTracks();
  for (let i = 0; i < tracks.length; i++) {
    const track = tracks[i];
    if (track.kind !== 'subtitles' && track.kind !== 'captions') continue;
    const active = track.activeCues || [];
    for (let j = 0; j < active.length; j++) {
      const c = active[j];
      if (!window.seen.some(s => s[1] === c.startTime && s[3] === c.text))
        window.seen.push([player.currentTime(), c.startTime, c.endTime, c.text]);
    }
  }
}, 100);
player.src({src: 'master.m3u8', type: 'application/x-mpegURL'});
player.play();
window.state = () => [player.currentTime(), player.ended(), window.failure];
window.tracks = () => Array.from(player.textTracks()).map(t => [t.kind, t.label, t.language]);
</script></body></html>"""


def main():
    pkg = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 15
    res = videojs_resources()
    server, base = serve(pkg, {"/player.html": PAGE.encode(), "/video.min.js": (res / "video.min.js").read_bytes(),
                               "/video-js.min.css": (res / "video-js.min.css").read_bytes()})
    driver = chromium()
    try:
        driver.get(f"{base}/player.html")
        end = time.time() + seconds + 20
        while time.time() < end:
            state = driver.execute_script("return window.state ? window.state() : [0, false, null]")
            if state[1] or state[2] is not None or state[0] >= seconds:
                break
            time.sleep(0.25)
        tracks = driver.execute_script("return window.tracks()")
        cues = driver.execute_script("return window.seen")
        error = driver.execute_script("return window.failure")
    finally:
        driver.quit()
        server.shutdown()
    print(json.dumps({"tracks": tracks, "cues": cues, "error": error}))
    return 0 if cues else 1


if __name__ == "__main__":
    sys.exit(main())
