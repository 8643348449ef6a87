#!/usr/bin/env python3
"""Generated lectures with known slide changes and titles, for judging chapter detection and titles.

    python3 bench/chapter_lectures.py OUT_DIR [NAME ...]

writes OUT_DIR/NAME.mp4 (1280x720, 25 fps, H.264 at CRF 26 with AAC sound, like an uploaded lecture)
and OUT_DIR/NAME.json:

    {"duration": 80, "languages": "eng", "changes": [8.0, ...], "titles": ["...", ...]}

`changes` are the times at which a new slide starts to show (a cut, the first frame of a fade or wipe,
the cut back from the camera); `titles` has one entry per chapter, the first chapter starting at 0. What
counts as a change is what docs/CHAPTERS.md says: a bullet appearing on the same slide, a pointer, the
camera inset's cuts, a full-screen camera stretch that returns to the same slide, and scrolling within
one file are not changes.

Lectures (each a case named in the chapter issue):
  template     template slides that differ in a few words, a figure that moves a little, a camera
               inset whose footage has a jump cut every few seconds
  inset_zoom   a camera inset with cuts, a slow zoom and a person walking across it
  camera       switches between full-screen camera and slides (one return to the same slide)
  pointer      a mouse pointer and a laser dot moving over still slides, pausing on words
  builds       bullets appearing one by one
  fades        cross-fades and wipes between slides
  dark         a dark-theme deck with an inset
  letterbox    4:3 slides letterboxed in a 16:9 frame
  chinese      a deck in Chinese (languages chi_sim+eng)
  editor       a screen recording of a code editor that scrolls, switching files
  zh_FONT      the Chinese title set: six headings of 32, 48 and 64 px in one CJK font (droid,
               zenhei, uming, ukai, notobold), blue on white and yellow on dark blue, over 24-px
               body text
"""
import json, math, os, random, subprocess, sys

import numpy as np
from PIL import Image, ImageDraw, ImageFont

W, H, FPS = 1280, 720, 25
DEJAVU = "/usr/share/fonts/truetype/dejavu/"
SANS, BOLD, MONO = DEJAVU + "DejaVuSans.ttf", DEJAVU + "DejaVuSans-Bold.ttf", DEJAVU + "DejaVuSansMono.ttf"
CJK = "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"

WORDS = ("data model error signal sample network buffer kernel vector matrix graph proof lemma theorem "
         "energy force field wave charge memory cache thread queue packet frame codec layer input output "
         "gradient descent linear convex random sorting search tree heap hash table index query stream").split()
TOPICS = ["Insertion Sort", "Merge Sort", "Quick Sort", "Heap Sort", "Radix Sort", "Binary Search",
          "Hash Tables", "Graph Traversal", "Shortest Paths", "Dynamic Programming", "Greedy Choice",
          "Linear Regression", "Gradient Descent", "Convex Functions", "Fourier Series", "Wave Equation",
          "Electric Fields", "Cache Memory", "Thread Pools", "Packet Loss"]


def font(path, size):
    """A font file, or (a font collection, the face's index in it)."""
    if isinstance(path, tuple):
        return ImageFont.truetype(path[0], size, index=path[1])
    return ImageFont.truetype(path, size)


def bullets(rng, n, words=6):
    return [" ".join(rng.choice(WORDS) for _ in range(words)).capitalize() for _ in range(n)]


class Slide:
    """A rendered slide (RGB array); `figure` draws a small moving shape on top when given."""

    def __init__(self, title, lines, theme="light", size=(W, H), title_bar=True, cjk=False, figure=False,
                 shown=None, face=None, title_size=46, body_size=30, colors=None):
        bg, fg, bar, tfg = ((250, 250, 247), (40, 40, 40), (26, 60, 130), (255, 255, 255)) if theme == "light" \
            else ((28, 30, 38), (220, 220, 210), (60, 70, 110), (250, 230, 150))
        if colors:
            bg, fg, tfg = colors
        img = Image.new("RGB", size, bg)
        d = ImageDraw.Draw(img)
        tf = font(face or (CJK if cjk else BOLD), title_size)
        bf = font(face or (CJK if cjk else SANS), body_size)
        if title_bar:
            d.rectangle([0, 0, size[0], 110], fill=bar)
            d.text((60, 30), title, font=tf, fill=tfg)
        else:
            d.text((60, 40), title, font=tf, fill=tfg if colors else fg)
        top = max(160, 40 + title_size + 60)
        for i, line in enumerate(lines[:shown] if shown is not None else lines):
            y = top + i * round(body_size * 62 / 30)
            d.ellipse([64, y + 12, 76, y + 24], fill=fg)
            d.text((96, y), line, font=bf, fill=fg)
        self.pixels = np.asarray(img, dtype=np.uint8).copy()
        self.figure = figure
        self.theme = theme

    def frame(self, t):
        if not self.figure:
            return self.pixels
        out = self.pixels.copy()
        # A coloured chart that moves a little (an animated figure on the template).
        x0 = 860 + int(6 * math.sin(t * 1.3)); y0 = 200 + int(4 * math.cos(t * 0.9))
        out[y0:y0 + 160, x0:x0 + 240] = (240, 240, 236)
        for k, (h, c) in enumerate([(120, (200, 80, 60)), (80, (60, 150, 90)), (140, (70, 110, 200)), (60, (220, 170, 40))]):
            hh = int(h * (0.9 + 0.1 * math.sin(t * 2 + k)))
            out[y0 + 150 - hh:y0 + 150, x0 + 20 + k * 55:x0 + 60 + k * 55] = c
        return out


class Camera:
    """Synthetic camera footage: a room, a person who sways or walks, sensor noise, jump cuts every
    `cut` seconds (each cut moves the framing and the person), an optional slow zoom."""

    def __init__(self, w, h, seed, cut=4.0, walk=False, zoom=False):
        self.w, self.h, self.cut, self.walk, self.zoom = w, h, cut, walk, zoom
        self.rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[0:h, 0:w]
        self.yy, self.xx = yy, xx
        self.shots = [(self.rng.uniform(0.3, 0.7), self.rng.uniform(0.8, 1.2), self.rng.integers(40, 120, 3))
                      for _ in range(200)]

    def frame(self, t):
        shot = int(t // self.cut)
        px, scale, wall = self.shots[shot % len(self.shots)]
        z = float(scale) * (1 + 0.15 * (t % self.cut) / self.cut if self.zoom else 1)
        img = np.empty((self.h, self.w, 3), np.float32)
        img[:] = wall
        img += (self.yy / self.h * 40)[..., None]
        cx = self.w * (px + (0.25 * math.sin(t * 0.7) if self.walk else 0.03 * math.sin(t * 1.7)))
        cy = self.h * 0.45
        head = ((self.xx - cx) / (0.09 * self.w * z)) ** 2 + ((self.yy - cy) / (0.16 * self.h * z)) ** 2 < 1
        body = ((self.xx - cx) / (0.2 * self.w * z)) ** 2 + ((self.yy - self.h * 1.05) / (0.4 * self.h * z)) ** 2 < 1
        img[head] = (216, 160, 112)
        img[body] = (60, 60, 90)
        img += self.rng.normal(0, 5, (self.h, self.w, 1))
        return np.clip(img, 0, 255).astype(np.uint8)


def inset(frame, cam, t, x=W - 340, y=H - 200):
    out = frame.copy()
    out[y:y + cam.h, x:x + cam.w] = cam.frame(t)
    return out


def encode(path, duration, frame_at, rng):
    tmp = path + ".tmp.mp4"
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{W}x{H}", "-r", str(FPS),
           "-i", "-", "-f", "lavfi", "-i", f"anoisesrc=a=0.02:c=pink:d={duration},lowpass=3000",
           "-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-pix_fmt", "yuv420p", "-g", "250",
           "-c:a", "aac", "-b:a", "64k", "-shortest", "-movflags", "+faststart", tmp]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    for i in range(int(duration * FPS)):
        p.stdin.write(np.ascontiguousarray(frame_at(i / FPS)).tobytes())
    p.stdin.close()
    if p.wait() != 0:
        raise SystemExit(f"{path}: ffmpeg failed")
    os.replace(tmp, path)


def timeline(spans):
    """spans: [(seconds, frame_fn(t_local, t_global))]; returns (duration, frame_at)."""
    starts, t = [], 0.0
    for d, _ in spans:
        starts.append(t); t += d
    def frame_at(t):
        for s, (d, fn) in zip(starts, spans):
            if t < s + d:
                return fn(t - s, t)
        return spans[-1][1](spans[-1][0], t)
    return t, frame_at


def still(slide):
    return lambda tl, t: slide.frame(t)


def with_inset(fn, cam):
    return lambda tl, t: inset(fn(tl, t), cam, t)


def crossfade(a, b, seconds):
    return seconds, lambda tl, t: (a.frame(t) * (1 - tl / seconds) + b.frame(t) * (tl / seconds)).astype(np.uint8)


def wipe(a, b, seconds):
    def fn(tl, t):
        out = a.frame(t).copy()
        x = int(W * tl / seconds)
        out[:, :x] = b.frame(t)[:, :x]
        return out
    return seconds, fn


def deck(rng, n, **kw):
    topics = rng.sample(TOPICS, n)
    return [Slide(topic, bullets(rng, 5), **kw) for topic in topics], topics


def simple(rng, slides, titles, lengths, decorate=lambda f: f):
    spans, changes, t = [], [], 0.0
    for i, (s, d) in enumerate(zip(slides, lengths)):
        if i: changes.append(t)
        spans.append((d, decorate(still(s))))
        t += d
    return spans, changes, titles


def make_template(rng):
    # One topic family: titles differ in one word, bullets in a few words.
    base = bullets(rng, 5)
    names = rng.sample(["Insertion", "Merge", "Quick", "Heap", "Radix", "Bucket", "Shell"], 7)
    slides, titles = [], []
    for n in names:
        lines = list(base)
        k = rng.randrange(5)
        words = lines[k].split(); words[rng.randrange(len(words))] = rng.choice(WORDS); lines[k] = " ".join(words)
        base = lines
        titles.append(f"Sorting: {n} Sort")
        slides.append(Slide(titles[-1], lines, figure=True))
    cam = Camera(320, 180, 1, cut=3.0)
    return simple(rng, slides, titles, [rng.uniform(8, 14) for _ in slides], lambda f: with_inset(f, cam))


def make_inset_zoom(rng):
    slides, titles = deck(rng, 6)
    cam = Camera(400, 240, 2, cut=5.0, walk=True, zoom=True)
    return simple(rng, slides, titles, [rng.uniform(9, 15) for _ in slides],
                  lambda f: (lambda tl, t: inset(f(tl, t), cam, t, x=W - 420, y=H - 260)))


def make_camera(rng):
    slides, titles = deck(rng, 5)
    cam = Camera(W, H, 3, cut=6.0)
    camera = lambda tl, t: cam.frame(t)
    # slide0, camera, slide1 (change when it appears), slide2, camera, slide2 again (no change), slide3, slide4
    spans = [(10, still(slides[0])), (7, camera), (10, still(slides[1])), (9, still(slides[2])), (6, camera),
             (6, still(slides[2])), (10, still(slides[3])), (9, still(slides[4]))]
    changes = [17, 27, 48, 58]
    return spans, changes, titles


def make_pointer(rng):
    slides, titles = deck(rng, 6)
    def pointer(fn):
        def g(tl, t):
            out = fn(tl, t).copy()
            # A laser dot sweeping along the bullets with pauses, and an arrow pointer drifting.
            phase = t % 6
            k = min(phase, 4) / 4
            lx, ly = int(100 + 700 * k), int(180 + 62 * (int(t / 6) % 5))
            yy, xx = np.ogrid[-9:10, -9:10]
            dot = xx * xx + yy * yy <= 81
            region = out[ly - 9:ly + 10, lx - 9:lx + 10]
            region[dot] = (240, 30, 30)
            ax, ay = int(640 + 300 * math.sin(t * 0.5)), int(420 + 150 * math.sin(t * 0.31))
            for r in range(22):
                out[ay + r, ax:ax + max(1, r // 2)] = (0, 0, 0)
            return out
        return g
    return simple(rng, slides, titles, [rng.uniform(9, 14) for _ in slides], pointer)


def make_builds(rng):
    topics = rng.sample(TOPICS, 4)
    spans, changes, titles, t = [], [], [], 0.0
    for i, topic in enumerate(topics):
        lines = bullets(rng, 5)
        if i: changes.append(t)
        titles.append(topic)
        for shown in range(1, 6):
            spans.append((3.0, still(Slide(topic, lines, shown=shown))))
            t += 3.0
    return spans, changes, titles


def make_fades(rng):
    slides, titles = deck(rng, 7)
    spans, changes, t = [], [], 0.0
    for i, s in enumerate(slides):
        if i:
            d, fn = (crossfade if i % 2 else wipe)(slides[i - 1], s, 1.0 if i % 2 else 0.8)
            changes.append(t)
            spans.append((d, fn)); t += d
        d = rng.uniform(8, 12)
        spans.append((d, still(s))); t += d
    return spans, changes, titles


def make_dark(rng):
    slides, titles = deck(rng, 6, theme="dark", title_bar=False)
    cam = Camera(320, 180, 4, cut=4.0)
    return simple(rng, slides, titles, [rng.uniform(8, 14) for _ in slides], lambda f: with_inset(f, cam))


def make_letterbox(rng):
    topics = rng.sample(TOPICS, 6)
    slides = []
    for topic in topics:
        s = Slide(topic, [" ".join(rng.choice(WORDS) for _ in range(4)).capitalize() for _ in range(5)], size=(960, 720))
        frame = np.zeros((H, W, 3), np.uint8)
        frame[:, 160:1120] = s.pixels
        s.pixels = frame
        slides.append(s)
    return simple(rng, slides, topics, [rng.uniform(8, 14) for _ in slides])


def make_chinese(rng):
    pairs = [("排序算法简介", ["插入排序的基本思想", "每次取出一个元素", "放到已排好的位置"]),
             ("归并排序", ["分而治之的方法", "把数组分成两半", "合并两个有序序列"]),
             ("快速排序", ["选择一个基准元素", "小的放左边大的放右边", "递归处理两边"]),
             ("二分查找", ["只适用于有序数组", "每次比较中间元素", "时间复杂度是对数级"]),
             ("哈希表", ["用哈希函数计算位置", "处理冲突的方法", "平均查找时间是常数"]),
             ("图的遍历", ["深度优先搜索", "广度优先搜索", "记录已经访问的顶点"])]
    slides = [Slide(t, lines, cjk=True) for t, lines in pairs]
    cam = Camera(320, 180, 5, cut=5.0)
    return simple(rng, slides, [t for t, _ in pairs], [rng.uniform(9, 14) for _ in slides],
                  lambda f: with_inset(f, cam))


# The Chinese title set: headings of 32, 48 and 64 px in one CJK font per deck, blue on white and
# yellow on dark blue, over 24-px body text, with a camera inset (docs/CHAPTERS.md, "Chinese").
CJK_FACES = {"droid": CJK, "zenhei": "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
             "uming": "/usr/share/fonts/truetype/arphic/uming.ttc", "ukai": "/usr/share/fonts/truetype/arphic/ukai.ttc",
             # Noto Sans CJK SC Bold (face 2 of the collection).
             "notobold": ("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc", 2)}
ZH_TITLES = {"droid": ["傅里叶变换", "线性代数基础", "机器学习导论", "概率论与数理统计", "神经网络与深度学习", "量子力学的基本假设"],
             "zenhei": ["信号与系统", "傅里叶变换", "第2讲 HTTP协议", "操作系统原理", "数据库索引", "编译原理概述"],
             "uming": ["傅里叶变换", "计算机网络", "Python编程入门", "离散数学", "热力学第一定律", "有机化学反应"],
             "ukai": ["微积分复习", "傅里叶变换", "矩阵的特征值", "第3章 TCP拥塞控制", "中国古代史", "经济学原理"],
             "notobold": ["傅里叶变换", "细胞生物学", "第5讲 SQL查询优化", "电磁感应", "算法分析与设计", "宏观经济学"]}
ZH_BODY = ["任何周期信号都可以写成许多简单波的和", "每个波都有自己的频率和振幅", "变换告诉我们信号包含多少频率"]


def make_zh(face):
    def make(rng):
        slides = []
        for i, title in enumerate(ZH_TITLES[face]):
            light = i % 2 == 0
            colors = ((255, 255, 255), (40, 40, 40), (30, 60, 200)) if light else ((20, 30, 60), (230, 230, 230), (255, 210, 80))
            slides.append(Slide(title, ZH_BODY, title_bar=False, face=CJK_FACES[face], title_size=(32, 48, 64)[i // 2],
                                body_size=24, colors=colors))
        cam = Camera(320, 180, 5, cut=5.0)
        return simple(rng, slides, ZH_TITLES[face], [rng.uniform(7, 10) for _ in slides], lambda f: with_inset(f, cam))
    return make


def make_editor(rng):
    mono = font(MONO, 22)
    tabf = font(BOLD, 30)
    files = rng.sample(["sorting.py", "graph.py", "server.swift", "parser.c", "cache.rs"], 4)
    def page(name, seed):
        r = random.Random(seed)
        lines = []
        for i in range(160):
            indent = "    " * r.randrange(3)
            lines.append(f"{i + 1:4d}  {indent}{r.choice(['def', 'let', 'if', 'for', 'return'])} "
                         + " ".join(r.choice(WORDS) for _ in range(r.randrange(2, 7))))
        img = Image.new("RGB", (W, 60 + 160 * 30), (30, 32, 40))
        d = ImageDraw.Draw(img)
        for i, line in enumerate(lines):
            d.text((20, 60 + i * 30), line, font=mono, fill=(200, 210, 190))
        text = np.asarray(img, dtype=np.uint8)
        bar = Image.new("RGB", (W, 60), (50, 52, 64))
        ImageDraw.Draw(bar).text((24, 12), name, font=tabf, fill=(240, 240, 240))
        return np.asarray(bar, dtype=np.uint8), text
    spans, changes, t = [], [], 0.0
    for i, name in enumerate(files):
        bar, text = page(name, i)
        def fn(tl, tg, bar=bar, text=text):
            # Scroll 4 lines a second for 4 s, pause 3 s, repeat.
            cycle, phase = divmod(tl, 7.0)
            lines = cycle * 16 + min(phase, 4.0) * 4
            off = int(lines * 30)
            out = np.empty((H, W, 3), np.uint8)
            out[:60] = bar
            out[60:] = text[60 + off:60 + off + H - 60]
            return out
        if i: changes.append(t)
        d = rng.uniform(15, 20)
        spans.append((d, fn)); t += d
    return spans, changes, files


LECTURES = {"template": make_template, "inset_zoom": make_inset_zoom, "camera": make_camera,
            "pointer": make_pointer, "builds": make_builds, "fades": make_fades, "dark": make_dark,
            "letterbox": make_letterbox, "chinese": make_chinese, "editor": make_editor,
            **{"zh_" + face: make_zh(face) for face in CJK_FACES}}


def main():
    out = sys.argv[1]
    names = sys.argv[2:] or list(LECTURES)
    os.makedirs(out, exist_ok=True)
    for name in names:
        path = os.path.join(out, name + ".mp4")
        truth = os.path.join(out, name + ".json")
        if os.path.exists(path) and os.path.exists(truth):
            continue
        rng = random.Random(name)
        spans, changes, titles = LECTURES[name](rng)
        duration, frame_at = timeline(spans)
        encode(path, duration, frame_at, rng)
        with open(truth, "w") as f:
            json.dump({"duration": round(duration, 3), "languages": "chi_sim+eng" if name == "chinese" or name.startswith("zh_") else "eng",
                       "changes": [round(c, 3) for c in changes], "titles": titles}, f, ensure_ascii=False, indent=1)
        print(f"{path}: {duration:.1f} s, {len(changes)} changes")


if __name__ == "__main__":
    main()
