#!/usr/bin/env python3
"""The speech stage measured (docs/SPEECH.md): word error rate on an evaluation set made here, the
Mandarin character error rate, and what the stage costs a transcode.

    python3 bench/speech.py [--models tiny.en,base] [--clips NAME,...] [--skip-cost] [--append]

The evaluation set is made once into ~/.cache/coursepack-bench/speech from this script's texts:
espeak-ng voices at several speeds, clean, with room noise (reverberation and pink noise) and with a
music bed 15 dB below the voice; a 20-minute lecture; silence and music alone; Mandarin read by
espeak-ng's cmn-latn-pinyin voice from pypinyin's transcription; and real human speech, the LibriVox recordings (Sense and Sensibility, read
aloud) with their transcription from Debian's pocketsphinx-testdata. Each clip is packaged by
`coursepack transcode --asr-model MODEL` (the product's own path, a 320x180 picture under the sound)
and its transcript.json is scored against the text: WER after lower-casing and removing punctuation
(jiwer), CER for Mandarin without spaces or punctuation.

The cost: the bench lecture (lecture720, 2 min, default preset) packaged without the speech stage
and with each model, alternating, two runs each (the faster counts): wall time, its ratio, and the
peak of the summed resident memory of coursepack and the engine (sampled from /proc every 0.1 s).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path.home() / ".cache" / "coursepack-bench" / "speech"
MODELS = ROOT / ".venv-asr" / "models"
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")

TEXTS = [
    "Today we begin with the Fourier transform. Any signal that repeats can be written as a sum of "
    "simple waves, each with its own frequency, amplitude and phase. The transform tells us how much "
    "of each frequency the signal holds.",
    "In the last lecture we saw why a matrix can be thought of as a function. It takes a vector and "
    "returns another vector. When we multiply two matrices, we are really composing two such functions, "
    "one after the other.",
    "Photosynthesis takes place in the chloroplasts of plant cells. Light is absorbed by chlorophyll, "
    "and its energy is used to split water. Oxygen is released, and the plant stores the energy in sugar.",
    "Supply and demand meet at the market price. When the price is too high, sellers offer more than "
    "buyers want, and the surplus pushes the price down. When it is too low, a shortage pushes it up again.",
    "A function is continuous when small changes in its input give small changes in its output. "
    "Intuitively, you can draw its graph without lifting your pen from the paper.",
    "The French Revolution began in the summer of the year the Bastille fell. Bread was expensive, "
    "the treasury was empty, and the old order could no longer answer the questions people were asking.",
    "Recursion means that a function calls itself on a smaller part of the problem. Every recursive "
    "function needs a base case, a problem so small that the answer is known without any further calls.",
    "Entropy measures how many ways the parts of a system can be arranged without changing what we see "
    "from the outside. Left alone, an isolated system moves toward the arrangements that are most likely.",
    "The cell membrane is made of two layers of lipids. Small molecules pass through it easily, while "
    "larger ones need special proteins that act as channels or pumps.",
    "Before we finish, let us review the main ideas of this week. Please read the next chapter carefully, "
    "and bring your questions to the discussion section on Thursday.",
]

ZH_TEXTS = [
    "今天我们学习傅里叶变换。任何周期信号都可以写成许多简单波的和，每个波都有自己的频率和振幅。",
    "细胞膜由两层脂质组成。小分子可以轻易通过，而较大的分子需要特殊的蛋白质作为通道。",
]

# name: (kind, voice, speed, text index, background)
CLIPS = {
    "en-us-150": ("en", "en-us", 150, 0, None),
    "en-us-130": ("en", "en-us", 130, 1, None),
    "en-gb-170": ("en", "en-gb", 170, 2, None),
    "en-us-m3-150": ("en", "en-us+m3", 150, 3, None),
    "en-us-f2-160": ("en", "en-us+f2", 160, 4, None),
    "en-gb-rp-145": ("en", "en-gb-x-rp", 145, 5, None),
    "en-us-150-room": ("en", "en-us", 150, 6, "room"),
    "en-gb-160-room": ("en", "en-gb", 160, 7, "room"),
    "en-us-150-music": ("en", "en-us", 150, 8, "music"),
    "en-us-f3-140-music": ("en", "en-us+f3", 140, 9, "music"),
    "librivox-human": ("human", None, None, None, None),
    "lecture-20min": ("long", "en-us", 155, None, None),
    "silence": ("silence", None, None, None, None),
    "music-only": ("music", None, None, None, None),
    "zh-cmn-1": ("zh", "cmn-latn-pinyin", 140, 0, None),
    "zh-cmn-2": ("zh", "cmn-latn-pinyin", 120, 1, None),
}


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def binary():
    for b in (ROOT / ".build/release/coursepack", ROOT / ".build/debug/coursepack"):
        if b.exists():
            return str(b)
    sys.exit("speech.py: build coursepack first (make build)")


def duration(path):
    out = run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)]).stdout
    return float(out.strip())


def mean_volume(path):
    err = subprocess.run(["ffmpeg", "-v", "info", "-i", str(path), "-af", "volumedetect", "-f", "null", "-"],
                         capture_output=True, text=True).stderr
    return float(re.search(r"mean_volume: (-?[\d.]+) dB", err).group(1))


MUSIC = ("aevalsrc=0.3*sin(2*PI*220*t)*(0.6+0.4*sin(2*PI*0.5*t))+0.25*sin(2*PI*277.2*t)*(0.6+0.4*sin(2*PI*0.33*t))"
         "+0.2*sin(2*PI*329.6*t)+0.15*sin(2*PI*440*t)*(0.5+0.5*sin(2*PI*2*t)):s=48000")


def pinyin(text):
    """Debian's espeak-ng has no Mandarin dictionary for Chinese characters (its cmn voice reads their
    code points); its cmn-latn-pinyin voice reads pinyin with tone numbers, made here by pypinyin."""
    from pypinyin import Style, lazy_pinyin
    return " ".join(lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True)).replace(" 。", ".").replace(" ，", ",")


def speak(voice, speed, text, out):
    run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(out), text])


def make_audio(name, spec, folder):
    """The clip's sound as 48-kHz mono WAV and its reference text."""
    kind, voice, speed, index, background = spec
    wav = folder / f"{name}.wav"
    if kind in ("en", "zh"):
        text = (TEXTS if kind == "en" else ZH_TEXTS)[index]
        raw = folder / f"{name}.voice.wav"
        speak(voice, speed, pinyin(text) if kind == "zh" else text, raw)
        if background is None:
            run(["ffmpeg", "-v", "error", "-y", "-i", str(raw), "-af", "adelay=500:all=1,apad=pad_dur=1", "-ar", "48000", "-ac", "1", str(wav)])
        elif background == "room":
            # A small room: two early reflections and a tail, under steady pink noise 30 dB below the voice.
            d = duration(raw) + 1.5
            v = mean_volume(raw)
            run(["ffmpeg", "-v", "error", "-y", "-i", str(raw), "-f", "lavfi", "-i", f"anoisesrc=color=pink:d={d}:r=48000:a=0.5",
                 "-filter_complex",
                 f"[0:a]aresample=48000,adelay=500:all=1,aecho=0.8:0.6:23|41|67:0.35|0.25|0.15,apad=pad_dur=1[v];"
                 f"[1:a]volume={v - 30 - mean_volume_of_noise(d)}dB[n];[v][n]amix=inputs=2:duration=first:normalize=0",
                 "-ac", "1", str(wav)])
        else:
            # A music bed 15 dB below the voice (mean levels), for the whole clip.
            d = duration(raw) + 1.5
            bed = folder / f"{name}.bed.wav"
            run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"{MUSIC}:d={d}", "-ac", "1", str(bed)])
            gain = mean_volume(raw) - 15 - mean_volume(bed)
            run(["ffmpeg", "-v", "error", "-y", "-i", str(raw), "-i", str(bed), "-filter_complex",
                 f"[0:a]aresample=48000,adelay=500:all=1,apad=pad_dur=1[v];[1:a]volume={gain:.2f}dB[m];"
                 "[v][m]amix=inputs=2:duration=longest:normalize=0", "-ac", "1", str(wav)])
        return wav, text
    if kind == "human":
        lines = (LIBRIVOX / "transcription").read_text().splitlines()
        texts, parts = [], []
        for line in lines:
            m = re.match(r"<s>(.*)</s> \((.*)\)", line.strip())
            texts.append(m.group(1).strip())
            parts.append(LIBRIVOX / f"{m.group(2)}.wav")
        inputs = sum((["-i", str(p)] for p in parts), [])
        chain = "".join(f"[{i}:a]aresample=48000,apad=pad_dur=0.8[a{i}];" for i in range(len(parts)))
        chain += "".join(f"[a{i}]" for i in range(len(parts))) + f"concat=n={len(parts)}:v=0:a=1"
        run(["ffmpeg", "-v", "error", "-y", *inputs, "-filter_complex", chain, "-ac", "1", str(wav)])
        return wav, " ".join(texts)
    if kind == "long":
        # About 20 minutes: the ten paragraphs read in turn, 2 s apart, until 1200 s.
        pieces, texts, total, i = [], [], 0.0, 0
        while total < 1200:
            p = folder / f"{name}.{i}.wav"
            speak(voice, speed, TEXTS[i % len(TEXTS)], p)
            pieces.append(p)
            texts.append(TEXTS[i % len(TEXTS)])
            total += duration(p) + 2
            i += 1
        listing = folder / f"{name}.list"
        # Two seconds between paragraphs: pad each, then concatenate.
        padded = []
        for k, p in enumerate(pieces):
            q = folder / f"{name}.{k}.pad.wav"
            run(["ffmpeg", "-v", "error", "-y", "-i", str(p), "-af", "apad=pad_dur=2", "-ar", "48000", "-ac", "1", str(q)])
            padded.append(q)
        listing.write_text("".join(f"file '{p}'\n" for p in padded))
        run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(wav)])
        for p in pieces + padded:
            p.unlink()
        return wav, " ".join(texts)
    if kind == "silence":
        run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-t", "30", str(wav)])
        return wav, ""
    run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"{MUSIC}:d=30", "-ac", "1", str(wav)])
    return wav, ""


def mean_volume_of_noise(d):
    with tempfile.TemporaryDirectory() as t:
        p = Path(t) / "n.wav"
        run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"anoisesrc=color=pink:d={d}:r=48000:a=0.5", str(p)])
        return mean_volume(p)


def make_clip(name, spec):
    """The clip as an MP4 (a 320x180 test picture at 10 fps under the sound) and its reference text."""
    CACHE.mkdir(parents=True, exist_ok=True)
    mp4, ref = CACHE / f"{name}.mp4", CACHE / f"{name}.txt"
    if mp4.exists() and ref.exists():
        return mp4, ref.read_text()
    with tempfile.TemporaryDirectory() as t:
        wav, text = make_audio(name, spec, Path(t))
        d = duration(wav)
        run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=s=320x180:r=10:d={d}", "-i", str(wav),
             "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-shortest", str(mp4)])
    ref.write_text(text)
    return mp4, text


def normalise(text, chinese=False):
    if chinese:
        return re.sub(r"[\s\W_]+", "", text)
    text = text.lower().replace("-", " ")
    text = re.sub(r"[^\w\s']", " ", text)
    return " ".join(text.split())


def package(mp4, model, language, out, preset="minimal"):
    cmd = [binary(), "transcode", str(mp4), "-o", str(out), "--preset", preset, "--asr-model", str(MODELS / model)]
    if language:
        cmd += ["--language", language]
    started = time.time()
    sampler = TreeSampler()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sampler.start(p.pid)
    _, err = p.communicate()
    sampler.stop()
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {err.strip()}")
    return time.time() - started, sampler.peak_mb


class TreeSampler:
    """Peak of the summed resident memory of a process and its descendants, from /proc."""

    def __init__(self):
        self.peak_mb = 0.0
        self._stop = threading.Event()

    def start(self, pid):
        self._thread = threading.Thread(target=self._run, args=(pid,), daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join()

    @staticmethod
    def tree(pid):
        children = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    ppid = int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1])
                    children.setdefault(ppid, []).append(int(d))
                except (OSError, IndexError, ValueError):
                    pass
        out, todo = [], [pid]
        while todo:
            p = todo.pop()
            out.append(p)
            todo += children.get(p, [])
        return out

    def _run(self, pid):
        while not self._stop.is_set():
            total = 0
            for p in self.tree(pid):
                try:
                    for line in open(f"/proc/{p}/status"):
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1])
                except OSError:
                    pass
            self.peak_mb = max(self.peak_mb, total / 1024)
            time.sleep(0.1)


def evaluate(models, names):
    import jiwer
    rows = []
    for name in names:
        spec = CLIPS[name]
        mp4, text = make_clip(name, spec)
        kind = spec[0]
        clip_seconds = duration(mp4)
        for model in models:
            if kind == "zh" and model.endswith(".en"):
                continue
            language = {"zh": "zh", "silence": None, "music": None}.get(kind, "en")
            with tempfile.TemporaryDirectory() as t:
                out = Path(t) / "pkg"
                wall, peak = package(mp4, model, language, out)
                lecture = json.loads((out / "lecture.json").read_text())
                transcript = lecture.get("transcript")
                hyp = ""
                if transcript:
                    segments = json.loads((out / "transcript.json").read_text())["segments"]
                    hyp = " ".join(s["text"] for s in segments)
                cues = []
                for c in lecture.get("captions", []):
                    if c.get("automatic"):
                        for seg in sorted((out / Path(c["playlist"]).parent).glob("seg_*.vtt")):
                            body = seg.read_text()
                            for m in re.finditer(r"(\d+):(\d+):([\d.]+) --> (\d+):(\d+):([\d.]+)\n(.*?)(?:\n\n|\Z)", body, re.S):
                                start = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])
                                end = int(m[4]) * 3600 + int(m[5]) * 60 + float(m[6])
                                cues.append((end - start, max(len(l) for l in m[7].splitlines()), len(m[7].splitlines())))
            row = {"clip": name, "kind": kind, "model": model, "seconds": round(clip_seconds, 1), "wall": round(wall, 1),
                   "peak_mb": round(peak), "track": bool(transcript), "warnings": lecture.get("warnings", []),
                   "longest_cue": round(max((c[0] for c in cues), default=0), 2), "longest_line": max((c[1] for c in cues), default=0),
                   "most_lines": max((c[2] for c in cues), default=0)}
            if kind == "zh":
                ref, h = normalise(text, True), normalise(hyp, True)
                row["cer"] = round(jiwer.cer(ref, h), 4) if h else 1.0
                row["hypothesis"] = hyp[:80]
            elif text:
                ref, h = normalise(text), normalise(hyp)
                row["wer"] = round(jiwer.wer(ref, h), 4) if h else 1.0
                row["words"] = len(ref.split())
            print(json.dumps(row, ensure_ascii=False), flush=True)
            rows.append(row)
    return rows


def cost(models, source):
    """Wall time and peak memory of the default package of `source` without and with each model."""
    results = {}
    for rep in range(2):
        for model in [None] + models:
            with tempfile.TemporaryDirectory() as t:
                out = Path(t) / "pkg"
                cmd = [binary(), "transcode", str(source), "-o", str(out)]
                if model:
                    cmd += ["--asr-model", str(MODELS / model), "--language", "en"]
                sampler = TreeSampler()
                started = time.time()
                p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                sampler.start(p.pid)
                _, err = p.communicate()
                sampler.stop()
                wall = time.time() - started
                if p.returncode != 0:
                    raise RuntimeError(err)
                key = model or "none"
                best = results.get(key)
                if best is None or wall < best["wall"]:
                    results[key] = {"wall": round(wall, 1), "peak_mb": round(sampler.peak_mb)}
                print(json.dumps({"cost": key, "run": rep, "wall": round(wall, 1), "peak_mb": round(sampler.peak_mb)}), flush=True)
    return results


def table(rows, costs, command):
    lines = [f"### Speech stage: word error rate and cost ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})", "",
             f"`{command}`, CoursePack at {subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True, cwd=ROOT).stdout.strip()}. "
             "Each clip packaged by `coursepack transcode --preset minimal --asr-model MODEL` (with `--language en`/`zh` "
             "except for silence and music); WER/CER of transcript.json against the text after lower-casing and removing "
             "punctuation (jiwer); cue limits read from the caption segments.", "",
             "| clip | model | seconds | WER / CER | words | caption track | longest cue s | longest line | lines | wall s | peak MB |",
             "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        score = f"{r['wer'] * 100:.1f} %" if "wer" in r else (f"CER {r['cer'] * 100:.1f} %" if "cer" in r else "-")
        track = "yes" if r["track"] else ("no: " + "; ".join(w for w in r["warnings"] if "speech" in w) if r["warnings"] else "no")
        lines.append(f"| {r['clip']} | {r['model']} | {r['seconds']} | {score} | {r.get('words', '')} | {track} | "
                     f"{r['longest_cue']} | {r['longest_line']} | {r['most_lines']} | {r['wall']} | {r['peak_mb']} |")
    lines.append("")
    for model in sorted({r["model"] for r in rows}):
        for label, pick in (("synthetic English without a music bed", lambda r: r["kind"] == "en" and "music" not in r["clip"]),
                            ("synthetic English with a music bed", lambda r: r["kind"] == "en" and "music" in r["clip"]),
                            ("all English clips", lambda r: "wer" in r)):
            sel = [r for r in rows if r["model"] == model and pick(r) and "wer" in r]
            if sel:
                words = sum(r["words"] for r in sel)
                overall = sum(r["wer"] * r["words"] for r in sel) / words
                lines.append(f"- {model}, {label}: WER {overall * 100:.1f} % over {words} words ({len(sel)} clips)")
    if costs:
        base = costs["none"]
        lines += ["", "| speech stage on lecture720 (default preset) | wall s (best of 2) | ratio | peak MB, coursepack + engine |",
                  "| --- | ---: | ---: | ---: |"]
        for k, v in costs.items():
            lines.append(f"| {k} | {v['wall']} | {v['wall'] / base['wall']:.2f} | {v['peak_mb']} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="tiny.en,base")
    ap.add_argument("--clips", default=",".join(CLIPS))
    ap.add_argument("--skip-cost", action="store_true")
    ap.add_argument("--append", action="store_true")
    a = ap.parse_args()
    check = subprocess.run([str(ROOT / ".venv-asr/bin/python"), str(ROOT / "asr/models.py"), "--check"], capture_output=True, text=True)
    if check.returncode != 0:
        sys.exit(f"speech.py: the models are missing or altered (make asr-models): {check.stderr.strip()}")
    if not LIBRIVOX.exists():
        sys.exit("speech.py: Debian's pocketsphinx-testdata is missing (make bench-deps)")
    models = a.models.split(",")
    rows = evaluate(models, a.clips.split(","))
    costs = None if a.skip_cost else cost([m for m in models], Path.home() / ".cache/coursepack-bench/lecture720.mp4")
    text = table(rows, costs, "python3 bench/speech.py " + " ".join(sys.argv[1:]))
    print(text)
    if a.append:
        with open(ROOT / "BENCHMARKS.md", "a") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
