#!/usr/bin/env python3
"""Does AV1 pay for the weak-link rung? H.264 (libx264, as the `v216` rung is encoded) against
SVT-AV1 at the same size and frame rate, on the bench sources, with the FFmpeg CLI as the encoder.

For each encoder setting: encode time (wall, 2 cores), bytes and peak of 6-s segments, slide-text OCR
recall (bench/lowband.py's measure) and VMAF against the source (FFmpeg 9's libvmaf, the rung scaled
back to the source size). Usage: av1_probe.py [--sources lecture720,dense720]
"""
import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lowband  # noqa: E402
import rung_probe  # noqa: E402

SETTINGS = [
    ("x264 veryfast CRF 26", ["-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-maxrate", "32k", "-bufsize", "48k",
                              "-x264-params", "trellis=1:open-gop=0"]),
    ("SVT-AV1 preset 10 CRF 45", ["-c:v", "libsvtav1", "-preset", "10", "-crf", "45"]),
    ("SVT-AV1 preset 10 CRF 50", ["-c:v", "libsvtav1", "-preset", "10", "-crf", "50"]),
    ("SVT-AV1 preset 8 CRF 50", ["-c:v", "libsvtav1", "-preset", "8", "-crf", "50"]),
]


def vmaf(src, dist, w, h):
    out = subprocess.run([lowband.ffmpeg9(), "-v", "info", "-i", str(dist), "-i", str(src), "-lavfi",
                          f"[0:v]scale={w}:{h}:flags=bicubic,setpts=PTS-STARTPTS[d];[1:v]setpts=PTS-STARTPTS[r];"
                          f"[d][r]libvmaf=n_subsample=5", "-f", "null", "-"], capture_output=True, text=True).stderr
    m = re.search(r"VMAF score: ([\d.]+)", out)
    return float(m.group(1)) if m else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sources", default="lecture720,dense720")
    a = ap.parse_args()
    for name in a.sources.split(","):
        src = lowband.CACHE / f"{name}.mp4"
        times = [120 * (i + 0.5) / 8 for i in range(8)]
        with tempfile.TemporaryDirectory() as tmp:
            frames = Path(tmp) / "frames"
            frames.mkdir()
            for label, args in SETTINGS:
                out = Path(tmp) / re.sub(r"\W+", "_", label)
                out.mkdir()
                gop = ["-force_key_frames", "expr:gte(t,n_forced*6)", "-g", "600"] if "libx264" in args else ["-g", "60"]
                start = time.time()
                peak, bits = rung_probe.hls(src, out, ["-an", "-vf", "scale=-2:216:flags=lanczos,fps=10"] + args + gop,
                                             input_args=["-threads", "2"])
                wall = time.time() - start
                total = bits / 8
                rec = lowband.ocr_recall(src, out / "index.m3u8", times, (1280, 720), frames)
                score = vmaf(src, out / "index.m3u8", 1280, 720)
                print(f"{name} | {label} | {wall:.1f} s | {total / 1e3:.0f} KB | {peak / 1e3:.1f} kb/s | {rec:.3f} | {score:.1f}",
                      flush=True)


if __name__ == "__main__":
    main()
