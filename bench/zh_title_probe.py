#!/usr/bin/env python3
"""Probe behind the Chinese slide titles (docs/CHAPTERS.md): how well Tesseract (chi_sim+eng, one
line) reads a slide heading cut out of a 1280x720 slide, at full size, at half size, and shrunk so
that the line is a given number of pixels tall.

    python3 bench/zh_title_probe.py

Slides are drawn with PIL in four CJK fonts from Debian's packages (Droid Sans Fallback, WenQuanYi
Zen Hei, AR PL UMing, AR PL UKai), nine headings (pure Chinese, Chinese with Latin letters and
digits, one English) at 24, 32, 48, 64 and 96 px, dark on light (a blue heading on white) and light
on dark (a yellow one on dark blue), over 24-px body text. Droid Sans Fallback has no Latin letters,
so it draws only the pure Chinese headings. The heading is cut out with a third of its height around
its ink and shrunk by area averaging (PIL's BOX filter, as the product shrinks it); a reading counts
when it equals the heading, spaces aside (OCR cannot see whether a space stood between scripts).
"""
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONTS = {"droid": "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", "zenhei": "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
         "uming": "/usr/share/fonts/truetype/arphic/uming.ttc", "ukai": "/usr/share/fonts/truetype/arphic/ukai.ttc"}
TITLES = ["傅里叶变换", "线性代数基础", "机器学习导论", "概率论与数理统计", "神经网络与深度学习", "量子力学的基本假设",
          "第2讲 HTTP协议", "Python编程入门", "Signals and Systems"]
BODY = ["任何周期信号都可以写成许多简单波的和", "每个波都有自己的频率和振幅", "变换告诉我们信号包含多少频率"]
SIZES = (24, 32, 48, 64, 96)
# (name, scale for a line `h` pixels tall)
WAYS = [("full size", lambda h: 1.0), ("half size", lambda h: 0.5)] + \
       [(f"{t} px tall", lambda h, t=t: min(1.0, t / h)) for t in (14, 16, 18, 20, 24)]


def ocr(png, languages="chi_sim+eng"):
    out = subprocess.run(["tesseract", str(png), "-", "-l", languages, "--psm", "7", "tsv"], capture_output=True, text=True).stdout
    words = [w for w in (line.split("\t") for line in out.splitlines()[1:]) if len(w) >= 12 and w[11].strip() and float(w[10]) >= 0]
    return "".join(w[11] for w in words)


def read(job, tmp):
    face, size, scheme, title = job
    bg, fg, tc = ((255, 255, 255), (40, 40, 40), (30, 60, 200)) if scheme == "light" else ((20, 30, 60), (230, 230, 230), (255, 210, 80))
    im = Image.new("RGB", (1280, 720), bg)
    d = ImageDraw.Draw(im)
    font = ImageFont.truetype(FONTS[face], size)
    d.text((60, 40), title, font=font, fill=tc)
    for k, b in enumerate(BODY):
        d.text((60, 40 + size + 60 + k * 50), b, font=ImageFont.truetype(FONTS[face], 24), fill=fg)
    x0, y0, x1, y1 = d.textbbox((60, 40), title, font=font)
    h = y1 - y0
    pad = h // 3
    crop = im.convert("L").crop((x0 - pad, y0 - pad, x1 + pad, y1 + pad))
    exact = {}
    for name, scale in WAYS:
        f = scale(h)
        c = crop if f == 1 else crop.resize((max(1, round(crop.width * f)), max(1, round(crop.height * f))), Image.BOX)
        png = Path(tmp) / f"{face}-{size}-{scheme}-{TITLES.index(title)}-{name.replace(' ', '')}.png"
        c.save(png)
        exact[name] = ocr(png).replace(" ", "") == title.replace(" ", "")
    return size, exact


def main():
    jobs = [(f, s, sc, t) for f in FONTS for s in SIZES for sc in ("light", "dark") for t in TITLES
            if not (f == "droid" and any(ch.isascii() and ch.isalpha() for ch in t))]
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(2) as pool:
        rows = list(pool.map(lambda j: read(j, tmp), jobs))
    names = [n for n, _ in WAYS]
    print("| heading size | " + " | ".join(names) + " |")
    print("| --- | " + " | ".join("---:" for _ in names) + " |")
    for size in SIZES:
        sel = [e for s, e in rows if s == size]
        print(f"| {size} px | " + " | ".join(f"{sum(e[n] for e in sel)}/{len(sel)}" for n in names) + " |")
    print("| all | " + " | ".join(f"{sum(e[n] for _, e in rows)}/{len(rows)}" for n in names) + " |")


if __name__ == "__main__":
    main()
