#!/usr/bin/env python3
"""Probe behind the Chinese slide titles (docs/CHAPTERS.md): how well Tesseract (chi_sim+eng, one
line) reads a slide heading cropped from a 1280x720 slide, at full size and scaled down.

    python3 bench/zh_title_probe.py

Slides are drawn with PIL in four CJK fonts from Debian's packages (Droid Sans Fallback,
WenQuanYi Zen Hei, AR PL UMing, AR PL UKai), headings of 32, 48 and 64 px over 24-px body text, dark
on light (a blue heading) and light on dark (a yellow one), with a camera inset; the heading's
crop is read at scales 1.0, 0.75 and 0.5 and counted exact when it equals the title; the last row
but one picks, for each heading, the reading with the highest length-weighted word confidence; the
last reads with chi_sim alone.
"""
import subprocess
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONTS = {"droid": "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", "zenhei": "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
         "uming": "/usr/share/fonts/truetype/arphic/uming.ttc", "ukai": "/usr/share/fonts/truetype/arphic/ukai.ttc"}
TITLES = ["傅里叶变换", "线性代数基础"]
BODY = ["任何周期信号都可以写成许多简单波的和", "每个波都有自己的频率和振幅", "变换告诉我们信号包含多少频率"]
SCALES = (1.0, 0.75, 0.5)


def ocr(png, languages="chi_sim+eng"):
    """The line's text and its words' confidence, weighted by their lengths (Tesseract's TSV)."""
    out = subprocess.run(["tesseract", str(png), "-", "-l", languages, "--psm", "7", "tsv"], capture_output=True, text=True).stdout
    words = [w for w in (line.split("\t") for line in out.splitlines()[1:]) if len(w) >= 12 and w[11].strip() and float(w[10]) >= 0]
    text = "".join(w[11] for w in words)
    confidence = sum(float(w[10]) * len(w[11]) for w in words) / max(1, sum(len(w[11]) for w in words))
    return text, confidence


def main():
    rows = []
    with tempfile.TemporaryDirectory() as t:
        png = Path(t) / "c.png"
        for fname, fpath in FONTS.items():
            for size in (32, 48, 64):
                for title in TITLES:
                    for scheme in ("light", "dark"):
                        bg, fg, tc = ((255, 255, 255), (40, 40, 40), (30, 60, 200)) if scheme == "light" else ((20, 30, 60), (230, 230, 230), (255, 210, 80))
                        im = Image.new("RGB", (1280, 720), bg)
                        d = ImageDraw.Draw(im)
                        d.text((60, 50), title, font=ImageFont.truetype(fpath, size), fill=tc)
                        for k, b in enumerate(BODY):
                            d.text((60, 200 + k * 50), b, font=ImageFont.truetype(fpath, 24), fill=fg)
                        d.rectangle((1000, 500, 1260, 700), fill=(120, 100, 90))
                        crop = im.convert("L").crop((40, 30, 60 + size * len(title) + 40, 50 + size + 30))
                        exact, alone, best = {}, {}, None
                        for sc in SCALES:
                            c = crop if sc == 1 else crop.resize((int(crop.width * sc), int(crop.height * sc)), Image.LANCZOS)
                            c.save(png)
                            read, confidence = ocr(png)
                            exact[sc] = read == title
                            alone[sc] = ocr(png, "chi_sim")[0] == title
                            if best is None or confidence > best[1]:
                                best = (read, confidence)
                        rows.append((fname, size, scheme, exact, best[0] == title, alone))
    print("| heading size | " + " | ".join(f"exact at {s}" for s in SCALES) + " |")
    print("| --- | " + " | ".join("---:" for _ in SCALES) + " |")
    for size in (32, 48, 64):
        sel = [r for r in rows if r[1] == size]
        print(f"| {size} px | " + " | ".join(f"{sum(r[3][s] for r in sel)}/{len(sel)}" for s in SCALES) + " |")
    print(f"| all | " + " | ".join(f"{sum(r[3][s] for r in rows)}/{len(rows)}" for s in SCALES) + " |")
    print(f"| any of the three scales | {sum(any(r[3].values()) for r in rows)}/{len(rows)} | | |")
    print(f"| the scale whose reading Tesseract is surest of | {sum(r[4] for r in rows)}/{len(rows)} | | |")
    print("| chi_sim alone (no eng) | " + " | ".join(f"{sum(r[5][s] for r in rows)}/{len(rows)}" for s in SCALES) + " |")


if __name__ == "__main__":
    main()
