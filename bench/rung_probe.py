#!/usr/bin/env python3
"""Quick probes for choosing the weak-link rung and its sound, with the FFmpeg CLI as the encoder.

  rung_probe.py video SOURCE HEIGHT:CRF:FPS:MAXKBPS[:X264PRESET[:BUFKBITS]][/X264PARAMS] ...
      libx264 (veryfast + trellis unless named, as the presets encode), 6-s fMP4 segments: peak and
      average video bit rate and slide-text OCR recall (bench/lowband.py's measure) of each setting;
      X264PARAMS is x264's own `key=value:...` list, added after `trellis=1:open-gop=0`.
  rung_probe.py audio SOURCE KBPS:RATE ...
      AAC-LC mono at each bit rate and sample rate, 6-s fMP4 segments: peak bit rate and wideband PESQ.

SOURCE is a name in the bench cache (lecture720, dense720) or a path.
"""
import glob
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lowband  # noqa: E402


def source(name):
    p = lowband.CACHE / f"{name}.mp4"
    return p if p.exists() else Path(name)


def hls(src, out, args, input_args=()):
    """Encodes `src` with `args` into 6-s fMP4 HLS segments in `out`: (peak bit/s, total bits)."""
    lowband.run(["ffmpeg", "-v", "error", "-y"] + list(input_args) + ["-i", str(src)] + args +
                ["-f", "hls", "-hls_time", "6", "-hls_segment_type", "fmp4", "-hls_playlist_type", "vod",
                 "-hls_segment_filename", f"{out}/seg_%03d.m4s", f"{out}/index.m3u8"])
    sizes = [os.path.getsize(s) for s in sorted(glob.glob(f"{out}/seg_*.m4s"))]
    return max(sizes[:-1] or sizes) * 8 / 6, sum(sizes) * 8


def main():
    mode, src, specs = sys.argv[1], source(sys.argv[2]), sys.argv[3:]
    duration = float(lowband.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(src)]).stdout)
    with tempfile.TemporaryDirectory() as tmp:
        frames = Path(tmp) / "frames"
        frames.mkdir()
        for spec in specs:
            if mode == "video":
                head, _, params = spec.partition("/")
                fields = head.split(":")
                h, crf, fps, maxk = fields[:4]
                x264preset = fields[4] if len(fields) > 4 else "veryfast"
                buf = fields[5] if len(fields) > 5 else str(2 * int(maxk))
                out = Path(tmp) / str(len(list(Path(tmp).iterdir())))
                out.mkdir()
                peak, bits = hls(src, out, ["-an", "-vf", f"scale=-2:{h}:flags=lanczos,fps={fps}", "-c:v", "libx264",
                                            "-preset", x264preset, "-crf", crf, "-maxrate", f"{maxk}k", "-bufsize", f"{buf}k",
                                            "-x264-params", "trellis=1:open-gop=0" + (":" + params if params else ""),
                                            "-force_key_frames", "expr:gte(t,n_forced*6)",
                                            "-g", "9999"])
                times = [duration * (i + 0.5) / 8 for i in range(8)]
                rec = lowband.ocr_recall(src, out / "index.m3u8", times, (1280, 720), frames)
                print(f"{src.stem} {spec}: peak {peak / 1000:.1f} kb/s, "
                      f"average {bits / duration / 1000:.1f} kb/s, OCR recall {rec:.3f}", flush=True)
            else:
                kbps, rate = spec.split(":")
                out = Path(tmp) / spec.replace(":", "_")
                out.mkdir()
                peak, bits = hls(src, out, ["-vn", "-ac", "1", "-ar", rate, "-c:a", "aac", "-b:a", f"{kbps}k"])
                score = lowband.speech_score(src, out / "index.m3u8", tmp)
                print(f"{src.stem} AAC-LC {kbps} kb/s mono {rate} Hz: peak {peak / 1000:.1f} kb/s, PESQ-WB {score:.2f}", flush=True)


if __name__ == "__main__":
    main()
