#!/usr/bin/env python3
"""Chapter detection and titles on the generated lectures of bench/chapter_lectures.py.

    python3 bench/chapters_bench.py [--mode transcode|chapters] [--append] [NAME ...]

For each lecture: `coursepack transcode` (the default, the product's real path: lecture.json's
chapters) or `coursepack chapters` (detection and OCR alone, quicker), then precision and recall of
the chapter starts against the known changes at +-1 s, and title accuracy: for each true chapter, the
title of the found chapter that starts within 1 s of it (the first at 0), exact matches and character
error rate (edit distance over the true title's length; a missed chapter counts as all wrong).
Prints a table per lecture and overall; --append adds it to BENCHMARKS.md.
"""
import argparse, json, os, re, subprocess, sys, time, unicodedata

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("BENCH_CACHE", os.path.expanduser("~/.cache/coursepack-bench"))
BIN = os.environ.get("COURSEPACK_BIN", os.path.join(ROOT, ".build/release/coursepack"))
TOLERANCE = 1.0


def edit_distance(a, b):
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


CJK = "\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef"


def normal(s):
    """NFKC, one space between words, and none next to a CJK character: whether "第2讲 HTTP协议" has
    a space between the scripts is typesetting, which OCR cannot see (docs/CHAPTERS.md)."""
    s = " ".join(unicodedata.normalize("NFKC", s).split())
    return re.sub(f"(?<=[{CJK}]) | (?=[{CJK}])", "", s)


def score(truth, chapters):
    changes = truth["changes"]
    found = [c["start"] for c in chapters if c["start"] > 0]
    hits = sum(1 for f in found if any(abs(f - c) <= TOLERANCE for c in changes))
    recalled = sum(1 for c in changes if any(abs(f - c) <= TOLERANCE for f in found))
    precision = hits / len(found) if found else 1.0
    recall = recalled / len(changes) if changes else 1.0
    exact, errors, chars, pairs = 0, 0, 0, []
    for start, title in zip([0.0] + changes, truth["titles"]):
        match = min((c for c in chapters if abs(c["start"] - start) <= TOLERANCE),
                    key=lambda c: abs(c["start"] - start), default=None)
        got = normal(match["title"]) if match and match.get("titleSource") == "slide" else ""
        want = normal(title)
        exact += got == want
        errors += min(len(want), edit_distance(got, want))
        chars += len(want)
        pairs.append((want, got))
    return {"found": found, "precision": precision, "recall": recall, "hits": hits, "recalled": recalled,
            "titles": len(truth["titles"]), "exact": exact, "cer": errors / max(1, chars), "errors": errors,
            "chars": chars, "pairs": pairs}


def run(name, mode, out_root):
    src = os.path.join(CACHE, "chapters", name + ".mp4")
    truth = json.load(open(os.path.join(CACHE, "chapters", name + ".json")))
    out = os.path.join(out_root, name)
    subprocess.run(["rm", "-rf", out])
    langs = ["--ocr-languages", truth["languages"]]
    t0 = time.time()
    if mode == "transcode":
        p = subprocess.run([BIN, "transcode", src, "-o", out, "--json"] + langs, capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit(f"{name}: transcode failed: {p.stderr.strip()}")
        chapters = json.load(open(os.path.join(out, "lecture.json")))["chapters"]
    else:
        p = subprocess.run([BIN, "chapters", src, "-o", out, "--json"] + langs, capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit(f"{name}: chapters failed: {p.stderr.strip()}")
        chapters = json.loads(p.stdout)
    wall = time.time() - t0
    r = score(truth, chapters)
    r["wall"] = wall
    r["changes"] = truth["changes"]
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*")
    ap.add_argument("--mode", choices=["transcode", "chapters"], default="transcode")
    ap.add_argument("--append", action="store_true")
    ap.add_argument("--verbose", "-v", action="store_true")
    args = ap.parse_args()
    subprocess.run([sys.executable, os.path.join(ROOT, "bench/chapter_lectures.py"), os.path.join(CACHE, "chapters")]
                   + args.names, check=True)
    names = args.names or ["template", "inset_zoom", "camera", "pointer", "builds", "fades", "dark", "letterbox",
                           "chinese", "editor"]
    out_root = os.path.join(CACHE, "runs", "chapters")
    os.makedirs(out_root, exist_ok=True)
    rows, tot = [], {"hits": 0, "found": 0, "recalled": 0, "changes": 0, "exact": 0, "titles": 0, "errors": 0, "chars": 0}
    for name in names:
        r = run(name, args.mode, out_root)
        rows.append((name, r))
        for k in ("hits", "recalled", "exact", "titles", "errors", "chars"):
            tot[k] += r[k]
        tot["found"] += len(r["found"])
        tot["changes"] += len(r["changes"])
        print(f"{name:11s} P {r['precision']:.2f} R {r['recall']:.2f} titles {r['exact']}/{r['titles']} CER {r['cer']:.3f} "
              f"({r['wall']:.1f} s)", flush=True)
        if args.verbose:
            print("   truth", r["changes"])
            print("   found", r["found"])
            for want, got in r["pairs"]:
                if want != got:
                    print(f"   title {want!r} read {got!r}")
    precision = tot["hits"] / tot["found"] if tot["found"] else 1.0
    recall = tot["recalled"] / tot["changes"]
    cer = tot["errors"] / tot["chars"]
    lines = ["| lecture | changes | found | precision | recall | titles exact | title CER |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in rows:
        lines.append(f"| {name} | {len(r['changes'])} | {len(r['found'])} | {r['precision']:.2f} | {r['recall']:.2f} | "
                     f"{r['exact']}/{r['titles']} | {r['cer']:.3f} |")
    lines.append(f"| **all** | {tot['changes']} | {tot['found']} | {precision:.2f} | {recall:.2f} | {tot['exact']}/{tot['titles']} | {cer:.3f} |")
    table = "\n".join(lines)
    print(table)
    if args.append:
        with open(os.path.join(ROOT, "BENCHMARKS.md"), "a") as f:
            f.write(f"\n### Chapters on the generated lectures ({time.strftime('%Y-%m-%d')})\n\n"
                    f"`python3 bench/chapters_bench.py --mode {args.mode}` (release build; changes at +-{TOLERANCE:g} s):\n\n{table}\n")


if __name__ == "__main__":
    main()
