#!/usr/bin/env python3
"""CoursePack against the FFmpeg CLI ladder a user would otherwise run.

For each benchmark source (bench/make_sources.sh), in one invocation and alternating runs:
  - FFmpeg 9 (imageio-ffmpeg's static build) and Debian's FFmpeg 5.1 CLI: one process, split + scale +
    libx264 at fixed bitrates (720p 2500k, 480p 1000k, 360p 600k, 240p 300k; AAC 96k; veryfast;
    2 s GOPs; 6 s segments; -f hls with var_stream_map);
  - CoursePack's default `lecture` preset.
Measures wall time, CPU time and peak RSS (GNU time), and per rung bytes, average bitrate, and VMAF
(vmaf_v0.6.1) and SSIM against the source, each rung scaled back to the source size (FFmpeg 9's
libvmaf). Then the lecture-hd preset (1080p on top) on the screencast for context, and a 30-minute
lecture (lecture720 repeated) through both, for time, bytes, quality and memory at length.
Prints a table and appends it to BENCHMARKS.md.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("BENCH_CACHE", Path.home() / ".cache" / "coursepack-bench"))
CP = ROOT / ".build" / "release" / "coursepack"
REF_LADDER = [(720, 2500), (480, 1000), (360, 600), (240, 300)]
SOURCES = [("lecture720", "2-min 720p slide lecture, PiP speaker, speech"),
           ("screencast1080", "1-min 1080p screencast, small text"),
           ("camera720", "2-min 720p full-camera talk, camera noise, slow zoom")]


def ffmpeg9():
    import imageio_ffmpeg
    return imageio_ffmpeg.get_ffmpeg_exe()


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def probe(path):
    out = run(["ffprobe", "-v", "error", "-of", "json", "-show_streams", "-show_format", str(path)]).stdout
    j = json.loads(out)
    v = next(s for s in j["streams"] if s["codec_type"] == "video")
    num, den = (int(x) for x in v["avg_frame_rate"].split("/"))
    return {"width": v["width"], "height": v["height"], "fps": num / den, "duration": float(j["format"]["duration"])}


def timed(cmd):
    """Wall seconds, CPU seconds (user + system) and peak RSS in MB of one command, from GNU time."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
        p = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", "-o", t.name] + cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed: {p.stderr[-2000:]}")
        wall, user, sys_, rss = t.read().split()[-4:]
    return {"wall": float(wall), "cpu": float(user) + float(sys_), "rss": int(rss) / 1024}


def reference_cmd(ffmpeg, src, out, fps):
    g = str(round(2 * fps))
    split = "".join(f"[v{i}]" for i in range(len(REF_LADDER)))
    scales = ";".join(f"[v{i}]scale=-2:{h}[o{i}]" for i, (h, _) in enumerate(REF_LADDER))
    cmd = [ffmpeg, "-v", "error", "-y", "-i", str(src), "-filter_complex", f"[0:v]split={len(REF_LADDER)}{split};{scales}"]
    for i in range(len(REF_LADDER)):
        cmd += ["-map", f"[o{i}]"]
    for i in range(len(REF_LADDER)):
        cmd += ["-map", "a:0"]
    cmd += ["-c:v", "libx264", "-preset", "veryfast"]
    for i, (_, kbps) in enumerate(REF_LADDER):
        cmd += [f"-b:v:{i}", f"{kbps}k"]
    cmd += ["-g", g, "-keyint_min", g, "-sc_threshold", "0", "-c:a", "aac", "-b:a", "96k",
            "-f", "hls", "-hls_time", "6", "-hls_playlist_type", "vod",
            "-hls_segment_filename", f"{out}/v%v/seg_%05d.ts", "-master_pl_name", "master.m3u8",
            "-var_stream_map", " ".join(f"v:{i},a:{i}" for i in range(len(REF_LADDER))), f"{out}/v%v/index.m3u8"]
    return cmd


def attrs(line):
    out, q, cur = {}, False, ""
    for ch in line + ",":
        if ch == '"':
            q = not q
        elif ch == "," and not q:
            k, _, v = cur.partition("=")
            out[k] = v
            cur = ""
            continue
        cur += ch if ch != '"' else ""
    return out


def media(pl):
    """(segment paths incl. init, durations) of a media playlist."""
    files, durs = [], []
    for line in pl.read_text().splitlines():
        if line.startswith("#EXT-X-MAP:"):
            files.append(pl.parent / attrs(line[11:])["URI"])
        elif line.startswith("#EXTINF:"):
            durs.append(float(line[8:].split(",")[0]))
        elif line and not line.startswith("#"):
            files.append(pl.parent / line)
    return files, durs


def package(dirpath):
    """Variants of a package with bytes, average bitrate and height; total delivered bytes."""
    master = dirpath / "master.m3u8"
    lines = master.read_text().splitlines()
    variants, delivered = [], set()
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-MEDIA:") and "URI=" in line:
            files, _ = media(master.parent / attrs(line[13:])["URI"])
            delivered.update(files)
        if line.startswith("#EXT-X-STREAM-INF:"):
            a = attrs(line[18:])
            files, durs = media(master.parent / lines[i + 1])
            delivered.update(files)
            size = sum(f.stat().st_size for f in set(files))
            res = a.get("RESOLUTION")
            variants.append({"uri": lines[i + 1], "height": int(res.split("x")[1]) if res else None,
                             "resolution": res, "bytes": size, "avg_kbps": size * 8 / sum(durs) / 1000,
                             "bandwidth": int(a.get("BANDWIDTH", 0))})
    return variants, sum(f.stat().st_size for f in delivered)


def quality(ff9, distorted, src, info, subsample):
    with tempfile.NamedTemporaryFile("r", suffix=".json") as log:
        graph = (f"[0:v]setpts=PTS-STARTPTS,scale={info['width']}:{info['height']}:flags=bicubic,format=yuv420p[d];"
                 f"[1:v]setpts=PTS-STARTPTS,format=yuv420p[r];"
                 f"[d][r]libvmaf=model=version=vmaf_v0.6.1:feature=name=float_ssim:n_threads=2:"
                 f"n_subsample={subsample}:log_fmt=json:log_path={log.name}")
        run([ff9, "-v", "error", "-allowed_extensions", "ALL", "-i", str(distorted), "-i", str(src),
             "-lavfi", graph, "-f", "null", "-"])
        pooled = json.load(open(log.name))["pooled_metrics"]
    return pooled["vmaf"]["mean"], pooled["float_ssim"]["mean"]


def rung_table(cp_vars, ref_vars):
    """Markdown rows comparing CoursePack's rungs with FFmpeg 9's by height; the worst VMAF delta."""
    rows = ["| rung | CoursePack kb/s (avg / peak incl. audio) | VMAF | SSIM | FFmpeg 9 kb/s (avg, muxed audio) | VMAF | SSIM | ΔVMAF |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    heights = sorted({v["height"] for v in cp_vars + ref_vars if v["height"]}, reverse=True)
    worst_delta = None
    for h in heights:
        c = next((v for v in cp_vars if v["height"] == h), None)
        f = next((v for v in ref_vars if v["height"] == h), None)
        delta = c["vmaf"] - f["vmaf"] if c and f else None
        if delta is not None:
            worst_delta = delta if worst_delta is None else min(worst_delta, delta)
        left = f"{c['avg_kbps']:.0f} / {c['bandwidth'] / 1000:.0f} | {c['vmaf']:.1f} | {c['ssim']:.4f}" if c else "— | — | —"
        right = f"{f['avg_kbps']:.0f} | {f['vmaf']:.1f} | {f['ssim']:.4f}" if f else "— | — | —"
        d = f"{delta:+.1f}" if delta is not None else "—"
        rows.append(f"| {h}p | {left} | {right} | {d} |")
    for v in cp_vars:
        if not v["height"]:
            rows.append(f"| audio-only | {v['avg_kbps']:.0f} / {v['bandwidth'] / 1000:.0f} | | | | | | |")
    return rows, worst_delta


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--subsample", type=int, default=5, help="VMAF every Nth frame")
    ap.add_argument("--skip-long", action="store_true", help="skip the 30-minute run")
    ap.add_argument("--no-append", action="store_true")
    ap.add_argument("--sources", help="comma-separated bench sources (default: all)")
    ap.add_argument("--wall-only", action="store_true",
                    help="time the runs and print wall and CPU only (no VMAF, extras or HD runs; nothing appended)")
    args = ap.parse_args()

    ff9, ff51 = ffmpeg9(), shutil.which("ffmpeg")
    tools = {"ffmpeg9": ff9, "ffmpeg5.1": ff51}
    work = CACHE / "runs"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    report = []
    summary = {}
    times_by_source, totals_by_source = {}, {}
    for name, desc in SOURCES:
        if args.sources and name not in args.sources.split(","):
            continue
        src = CACHE / f"{name}.mp4"
        info = probe(src)
        times = {"coursepack": [], "ffmpeg9": [], "ffmpeg5.1": []}
        for r in range(args.repeats):
            for tool in ["ffmpeg9", "coursepack", "ffmpeg5.1"]:
                out = work / name / tool
                shutil.rmtree(out, ignore_errors=True)
                out.parent.mkdir(parents=True, exist_ok=True)
                if tool == "coursepack":
                    cmd = [str(CP), "transcode", str(src), "-o", str(out)]
                else:
                    out.mkdir()
                    cmd = reference_cmd(tools[tool], src, out, info["fps"])
                times[tool].append(timed(cmd))
                print(f"  {name} run {r + 1} {tool}: {times[tool][-1]}", file=sys.stderr)
        med = {t: {k: statistics.median(x[k] for x in v) for k in ("wall", "cpu", "rss")} for t, v in times.items()}
        if args.wall_only:
            print(f"\n{name}, medians of {args.repeats} runs in turn:\n\n| run | wall s | CPU s | wall ratio CoursePack/this |\n| --- | ---: | ---: | ---: |")
            for t in ["coursepack", "ffmpeg9", "ffmpeg5.1"]:
                print(f"| {t} | {med[t]['wall']:.1f} | {med[t]['cpu']:.1f} | {med['coursepack']['wall'] / med[t]['wall']:.2f} |")
            continue
        cp_vars, cp_total = package(work / name / "coursepack")
        ref_vars, ref_total = package(work / name / "ffmpeg9")
        times_by_source[name], totals_by_source[name] = times, ref_total
        for v in cp_vars + ref_vars:
            if v["height"]:
                pkg = work / name / ("coursepack" if v in cp_vars else "ffmpeg9")
                v["vmaf"], v["ssim"] = quality(ff9, pkg / v["uri"], src, info, args.subsample)
        minutes = info["duration"] / 60
        audio_only = [v for v in cp_vars if not v["height"]]
        low = min((v for v in cp_vars if v["height"]), key=lambda v: v["bandwidth"])
        s = summary[name] = {
            "wall_ratio_vs_ffmpeg9": med["coursepack"]["wall"] / med["ffmpeg9"]["wall"],
            "cpu_ratio_vs_ffmpeg9": med["coursepack"]["cpu"] / med["ffmpeg9"]["cpu"],
            "wall_ratio_vs_ffmpeg5.1": med["coursepack"]["wall"] / med["ffmpeg5.1"]["wall"],
            "bytes_ratio": cp_total / ref_total, "cp_mb_per_min": cp_total / 1e6 / minutes,
            "ref_mb_per_min": ref_total / 1e6 / minutes, "cp_rss": med["coursepack"]["rss"],
            "cp_wall": med["coursepack"]["wall"],
            "lowest_peak_kbps": low["bandwidth"] / 1000, "audio_only_peak_kbps": audio_only[0]["bandwidth"] / 1000 if audio_only else None,
        }
        report.append(f"\n### {name}: {desc} ({info['width']}x{info['height']}, {info['fps']:.0f} fps, {info['duration']:.0f} s)\n")
        report.append("| run | wall s (median) | CPU s | peak RSS MB | wall ratio CoursePack/this |")
        report.append("| --- | ---: | ---: | ---: | ---: |")
        for t in ["coursepack", "ffmpeg9", "ffmpeg5.1"]:
            m = med[t]
            ratio = med["coursepack"]["wall"] / m["wall"]
            report.append(f"| {t} | {m['wall']:.1f} | {m['cpu']:.1f} | {m['rss']:.0f} | {ratio:.2f} |")
        report.append("")
        lines, s["worst_vmaf_delta"] = rung_table(cp_vars, ref_vars)
        report += lines
        report.append("")
        report.append(f"Delivered bytes: CoursePack {cp_total / 1e6:.2f} MB ({s['cp_mb_per_min']:.2f} MB/min), "
                      f"FFmpeg 9 {ref_total / 1e6:.2f} MB ({s['ref_mb_per_min']:.2f} MB/min): ratio {s['bytes_ratio']:.3f}.")

    if args.wall_only:
        return
    # What the poster, storyboard, chapters and downloads cost against the renditions alone.
    src = CACHE / "lecture720.mp4"
    extras = {"full": [], "renditions-only": []}
    for r in range(args.repeats):
        for mode in extras:
            out = work / "extras" / mode
            shutil.rmtree(out, ignore_errors=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            cmd = [str(CP), "transcode", str(src), "-o", str(out)] + (["--renditions-only"] if mode != "full" else [])
            extras[mode].append(timed(cmd))
            print(f"  extras run {r + 1} {mode}: {extras[mode][-1]}", file=sys.stderr)
    full = statistics.median(x["wall"] for x in extras["full"])
    bare = statistics.median(x["wall"] for x in extras["renditions-only"])
    summary["extras_ratio"] = full / bare
    report.append("\n### Extra outputs on lecture720 (poster, storyboard, chapters, downloads)\n")
    report.append(f"Wall {full:.1f} s with them, {bare:.1f} s with `--renditions-only` (medians of {args.repeats}): "
                  f"ratio {full / bare:.3f} (goal ≤ 1.05).")

    # The 1080p ladder (lecture-hd) on the screencast, for context: one run, not a comparison target
    # (only when the screencast was among the --sources).
    if "screencast1080" in times_by_source:
        src, info = CACHE / "screencast1080.mp4", probe(CACHE / "screencast1080.mp4")
        out = work / "screencast1080" / "coursepack-hd"
        shutil.rmtree(out, ignore_errors=True)
        hd = timed([str(CP), "transcode", str(src), "-o", str(out), "--preset", "lecture-hd"])
        hd_vars, hd_total = package(out)
        top = max((v for v in hd_vars if v["height"]), key=lambda v: v["height"])
        top_vmaf, _ = quality(ff9, out / top["uri"], src, info, args.subsample)
        ref9 = statistics.median(x["wall"] for x in times_by_source["screencast1080"]["ffmpeg9"])
        report.append("\n### lecture-hd (adds a 1080p rung) on screencast1080\n")
        report.append(f"Wall {hd['wall']:.1f} s ({hd['wall'] / ref9:.2f}x FFmpeg 9's median), peak RSS {hd['rss']:.0f} MB, "
                      f"delivered {hd_total / 1e6:.2f} MB (ratio {hd_total / totals_by_source['screencast1080']:.3f}); "
                      f"1080p rung {top['avg_kbps']:.0f} kb/s average, VMAF {top_vmaf:.1f}.")

    if not args.skip_long:
        src = CACHE / "lecture720-30min.mp4"
        out = work / "long" / "coursepack"
        out.parent.mkdir(parents=True, exist_ok=True)
        info, base = probe(src), probe(CACHE / "lecture720.mp4")
        # FFmpeg 9's ladder on the same 30 minutes, once each (FFmpeg first), then every rung's VMAF
        # over the whole recording, every 30th frame at least.
        ref_out = work / "long" / "ffmpeg9"
        shutil.rmtree(ref_out, ignore_errors=True)
        ref_out.mkdir(parents=True)
        ref_long = timed(reference_cmd(ff9, src, ref_out, info["fps"]))
        print(f"  30-min ffmpeg9: {ref_long}", file=sys.stderr)
        long = timed([str(CP), "transcode", str(src), "-o", str(out)])
        print(f"  30-min coursepack: {long}", file=sys.stderr)
        short = summary["lecture720"]
        cp_vars, cp_total = package(out)
        ref_vars, ref_total = package(ref_out)
        every = max(args.subsample, 30)
        for v in cp_vars + ref_vars:
            if v["height"]:
                v["vmaf"], v["ssim"] = quality(ff9, (out if v in cp_vars else ref_out) / v["uri"], src, info, every)
        # Linear time means the same wall seconds per media second at both lengths.
        linearity = (long["wall"] / info["duration"]) / (short["cp_wall"] / base["duration"])
        report.append("\n### 30-minute lecture: lecture720 repeated to 30 min, against FFmpeg 9 (one run each)\n")
        report.append("| run | wall s | CPU s | peak RSS MB | wall ratio CoursePack/this |")
        report.append("| --- | ---: | ---: | ---: | ---: |")
        for t, m in (("coursepack", long), ("ffmpeg9", ref_long)):
            report.append(f"| {t} | {m['wall']:.1f} | {m['cpu']:.1f} | {m['rss']:.0f} | {long['wall'] / m['wall']:.2f} |")
        report.append("")
        lines, worst = rung_table(cp_vars, ref_vars)
        report += lines
        report.append("")
        report.append(f"VMAF on every {every}th frame. Delivered bytes: CoursePack {cp_total / 1e6:.1f} MB, FFmpeg 9 {ref_total / 1e6:.1f} MB: "
                      f"ratio {cp_total / ref_total:.3f}.")
        report.append(f"Wall {long['wall']:.1f} s for {info['duration']:.0f} s of media ({info['duration'] / long['wall']:.1f}x real time); "
                      f"wall per media second {linearity:.2f}x the 2-min run's. Peak RSS {long['rss']:.0f} MB vs "
                      f"{short['cp_rss']:.0f} MB for 2 min (ratio {long['rss'] / short['cp_rss']:.2f}).")
        summary["long"] = {"wall": long["wall"], "rss": long["rss"], "rss_ratio": long["rss"] / short["cp_rss"],
                           "linearity": linearity, "wall_ratio_vs_ffmpeg9": long["wall"] / ref_long["wall"],
                           "bytes_ratio": cp_total / ref_total, "worst_vmaf_delta": worst}

    report.append("\n### Targets\n")
    for name, s in summary.items():
        if name in ("long", "extras_ratio"):
            continue
        report.append(f"- {name}: wall {s['wall_ratio_vs_ffmpeg9']:.2f}x FFmpeg 9 (target ≤ 0.80), CPU {s['cpu_ratio_vs_ffmpeg9']:.2f}x, "
                      f"bytes {s['bytes_ratio']:.3f}x (target ≤ 0.30), worst VMAF delta {s['worst_vmaf_delta']:+.1f} (target ≥ -2), "
                      f"peak RSS {s['cp_rss']:.0f} MB, lowest rung peak {s['lowest_peak_kbps']:.0f} kb/s incl. audio (target ≤ 128), "
                      f"audio-only peak {s['audio_only_peak_kbps']:.0f} kb/s (target ≤ 48)")
    if "long" in summary:
        lg = summary["long"]
        report.append(f"- 30-min lecture: wall {lg['wall_ratio_vs_ffmpeg9']:.2f}x FFmpeg 9, bytes {lg['bytes_ratio']:.3f}x, worst VMAF delta "
                      f"{lg['worst_vmaf_delta']:+.1f}, peak RSS {lg['rss']:.0f} MB, {lg['rss_ratio']:.2f}x the 2-min run (target ≤ 1.10); "
                      f"wall per media second {lg['linearity']:.2f}x the 2-min run's (linear = 1.00)")

    text = "\n".join(report)
    print(text)
    if not args.no_append:
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
        mem = int(next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal"))) / 1024 / 1024
        v51 = run([ff51, "-version"]).stdout.split("\n")[0]
        v9 = run([ff9, "-version"]).stdout.split("\n")[0]
        header = (f"\n## {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC — `make bench` "
                  f"(`python3 bench/bench.py --repeats {args.repeats} --subsample {args.subsample}{' --skip-long' if args.skip_long else ''}`)\n\n"
                  f"Machine: {os.cpu_count()} cores ({cpu}), {mem:.0f} GiB. References: {v9}; {v51}.\n")
        with open(ROOT / "BENCHMARKS.md", "a") as f:
            f.write(header + text + "\n")


if __name__ == "__main__":
    main()
