"""CoursePack's speech engine: faster-whisper in a child process.

The transcoder starts it as `PYTHON -m coursepack_asr --model DIR [...]`, waits for its `ready`
line (the model loaded: a missing or broken model fails here, before any decoding), then writes the
lecture's sound to its stdin as it decodes it: 16-bit little-endian mono PCM at 16 kHz, until end of
file. The engine answers on stdout with one JSON object a line:

  {"event": "ready", "model": DIR, "multilingual": true}
  {"event": "language", "language": "en", "probability": 0.98, "detected": true}
  {"event": "segment", "start": 1.2, "end": 3.4, "text": "...", "words": [[1.2, 1.5, " Hello"], ...]}
  {"event": "done", "audioSeconds": 120.0, "segments": 31}
  {"event": "error", "reason": "..."}      (then exit status 2; 3 for a model that does not load)

Long recordings are transcribed in chunks of about --chunk-seconds, each cut at the quietest half
second near its end, so memory stays flat in the lecture's length and the text is ready soon after
the sound. Chinese comes out in Simplified characters (OpenCC's t2s), whatever the model writes.
"""

import argparse
import json
import os
import sys

SAMPLE_RATE = 16000


def emit(obj):
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def fail(reason, status=2):
    emit({"event": "error", "reason": reason})
    sys.exit(status)


def load_model(folder, threads):
    for name in ("model.bin", "config.json"):
        if not os.path.isfile(os.path.join(folder, name)):
            fail(f"{folder}: not a CTranslate2 Whisper model folder (no {name})", 3)
    if not any(os.path.isfile(os.path.join(folder, n)) for n in ("tokenizer.json", "vocabulary.txt", "vocabulary.json")):
        fail(f"{folder}: not a CTranslate2 Whisper model folder (no tokenizer.json or vocabulary)", 3)
    try:
        from faster_whisper import WhisperModel
    except Exception as e:  # the engine's own packages are missing
        fail(f"faster-whisper cannot be imported ({e}); install it with `make asr-deps`", 3)
    try:
        return WhisperModel(folder, device="cpu", compute_type="int8", cpu_threads=threads, num_workers=1,
                            local_files_only=True)
    except Exception as e:
        fail(f"{folder}: the model does not load: {str(e).splitlines()[0] if str(e) else type(e).__name__}", 3)


def quietest_cut(samples, start, end):
    """Index of the quietest 0.5-s window's middle within samples[start:end]."""
    import numpy as np
    window = SAMPLE_RATE // 2
    if end - start <= window:
        return end
    region = samples[start:end].astype(np.float32)
    energy = np.convolve(region * region, np.ones(window, dtype=np.float32), mode="valid")
    return start + int(np.argmin(energy)) + window // 2


class Simplifier:
    """Traditional to Simplified Chinese, for a Chinese lecture."""

    def __init__(self):
        import opencc
        self.converter = opencc.OpenCC("t2s")

    def __call__(self, text):
        return self.converter.convert(text)


MUSIC_ONLY = set("♪♫♬♩ ()[]*-.…,")


def is_filler(text):
    """Whisper's words for what is not speech: music notes, bracketed sounds."""
    t = text.strip()
    if not t:
        return True
    if all(c in MUSIC_ONLY for c in t):
        return True
    lowered = t.lower().strip("()[]*. ")
    return (t[0] in "[(*" and t[-1] in "])*") or lowered in ("music", "applause", "silence", "laughter")


def die_with_parent():
    """Linux: be killed when the transcoder that started this process dies."""
    try:
        import ctypes
        import signal
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:
            sys.exit(1)
    except (OSError, AttributeError):
        pass


class Reader:
    """Reads stdin on a thread of its own, so the transcoder never waits on a pipe while a chunk is
    being transcribed; reports every 30 s of sound received (the transcoder's stall watch)."""

    def __init__(self, stream):
        import threading
        self.stream = stream
        self.parts = []
        self.size = 0  # samples received
        self.ended = False
        self.cond = threading.Condition()
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        import numpy as np
        carry = b""
        reported = 0
        while True:
            data = self.stream.read1(1 << 16) if hasattr(self.stream, "read1") else self.stream.read(1 << 16)
            with self.cond:
                if not data:
                    self.ended = True
                    self.cond.notify_all()
                    return
                data = carry + data
                even = len(data) - len(data) % 2
                carry = data[even:]
                samples = np.frombuffer(data[:even], dtype="<i2").copy()
                self.parts.append(samples)
                self.size += len(samples)
                self.cond.notify_all()
                if self.size - reported >= 30 * SAMPLE_RATE:
                    reported = self.size
                    emit({"event": "progress", "received": round(self.size / SAMPLE_RATE, 1)})

    def take(self, minimum):
        """Waits for at least `minimum` samples (or the end), then returns all received so far and
        whether the input has ended."""
        import numpy as np
        with self.cond:
            while self.size < minimum and not self.ended:
                self.cond.wait()
            out = np.concatenate(self.parts) if self.parts else np.zeros(0, dtype=np.int16)
            self.parts = []
            self.size = 0
            return out, self.ended


def split_at_pauses(words, pause=1.0):
    """Words in runs with no gap of `pause` seconds or more between them."""
    parts = [[words[0]]]
    for w in words[1:]:
        if w[0] - parts[-1][-1][1] >= pause:
            parts.append([w])
        else:
            parts[-1].append(w)
    return parts


def collapse(words, most=3):
    """Drops a word that repeats the one before it more than `most` times in a row (a decoding loop)."""
    out, run = [], 0
    for w in words:
        same = bool(out) and w[2].strip() == out[-1][2].strip()
        run = run + 1 if same else 0
        if run < most:
            out.append(w)
    return out


def main():
    die_with_parent()
    ap = argparse.ArgumentParser(prog="coursepack_asr")
    ap.add_argument("--model", required=True)
    ap.add_argument("--language", default=None, help="ISO 639-1 code; none: detect it")
    ap.add_argument("--task", default="transcribe", choices=["transcribe", "translate"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--beam-size", type=int, default=1)  # greedy: 0.6x the CPU of 5 beams (BENCHMARKS.md)
    ap.add_argument("--chunk-seconds", type=float, default=300)
    args = ap.parse_args()

    model = load_model(args.model, max(1, args.threads))
    emit({"event": "ready", "model": args.model, "multilingual": bool(model.model.is_multilingual)})

    import numpy as np

    language = args.language
    if language and not model.model.is_multilingual and language != "en":
        fail(f"{args.model}: an English-only model cannot transcribe language '{language}'", 3)
    simplify = None
    chunk = int(args.chunk_seconds * SAMPLE_RATE)
    reach = min(30 * SAMPLE_RATE, chunk // 4)
    pending = np.zeros(0, dtype=np.int16)
    offset = 0  # samples already transcribed
    prompt = None
    count = 0
    stdin = sys.stdin.buffer

    def transcribe(samples, final):
        nonlocal language, simplify, prompt, count
        audio = samples.astype(np.float32) / 32768.0
        # Each 30-s window is decoded on its own (not conditioned on the last one's text) with a light
        # repetition penalty: what keeps Whisper out of most of the loops it falls into on unclear
        # speech; `collapse` drops what is left of them. The chunk before gives the prompt.
        kwargs = dict(language=language, task=args.task, beam_size=args.beam_size, word_timestamps=True,
                      vad_filter=True, condition_on_previous_text=False, initial_prompt=prompt,
                      repetition_penalty=1.05)
        segments, info = model.transcribe(audio, **kwargs)
        if language is None:
            language = info.language
            emit({"event": "language", "language": language, "probability": round(float(info.language_probability), 3),
                  "detected": True})
        elif count == 0 and offset == 0:
            emit({"event": "language", "language": language, "probability": 1.0, "detected": False})
        if language == "zh" and simplify is None:
            simplify = Simplifier()
        base = offset / SAMPLE_RATE
        texts = []
        for s in segments:
            text = simplify(s.text) if simplify else s.text
            if is_filler(text):
                continue
            words = collapse([[round(base + w.start, 3), round(base + w.end, 3), simplify(w.word) if simplify else w.word]
                              for w in (s.words or []) if not is_filler(w.word)])
            if s.words and not words:
                continue
            # Whisper's segments can run over long silences; a pause of a second or more starts a
            # new one, so each segment's start is when its words begin.
            for part in split_at_pauses(words) if words else [None]:
                start, end = (part[0][0], part[-1][1]) if part else (round(base + s.start, 3), round(base + s.end, 3))
                piece = "".join(w[2] for w in part).strip() if part else text.strip()
                emit({"event": "segment", "start": start, "end": end, "text": piece, "words": part or [],
                      "noSpeech": round(float(s.no_speech_prob), 3), "logprob": round(float(s.avg_logprob), 3)})
                texts.append(piece)
                count += 1
        if texts:
            prompt = " ".join(texts)[-200:]

    reader = Reader(stdin)
    while True:
        received, ended = reader.take(max(0, chunk + reach - len(pending)))
        pending = np.concatenate([pending, received])
        if len(pending) >= chunk + reach and not ended:
            cut = quietest_cut(pending, chunk - reach, chunk + reach)
        elif ended:
            cut = len(pending)
        else:
            continue
        if cut:
            transcribe(pending[:cut], final=ended)
        offset += cut
        pending = pending[cut:]
        if ended and not len(pending):
            break
    if language is None:  # no sound at all
        language = args.language
    emit({"event": "done", "audioSeconds": round(offset / SAMPLE_RATE, 3), "segments": count, "language": language})


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(141)
    except SystemExit:
        raise
    except MemoryError:
        fail("out of memory")
    except Exception as e:
        fail(f"{type(e).__name__}: {e}")
