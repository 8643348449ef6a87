import Foundation
import LectureModel

/// `index.html` beside the course manifest: a static page people can open to look at a course
/// package, with a native HLS player per lecture. Served over HTTP, it needs nothing else.
enum Report {
    static func html(_ m: CourseManifest) -> String {
        var h = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(esc(m.course.title))</title>
        <style>
        body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 980px; padding: 1em; color: #222; }
        header p, .meta { color: #555; }
        .lecture { border-top: 1px solid #ddd; padding: 1em 0; }
        .lecture h2 { margin: 0 0 .3em; font-size: 1.25em; }
        video { width: 100%; max-width: 640px; background: #000; display: block; }
        table { border-collapse: collapse; margin: .6em 0; font-size: 13px; }
        th, td { text-align: right; padding: 2px 10px; border-bottom: 1px solid #eee; }
        th:first-child, td:first-child { text-align: left; }
        .chapters { columns: 2; font-size: 13px; }
        .failed { background: #fff1f0; border-left: 4px solid #d33; padding: .5em 1em; }
        .pending { color: #777; }
        .thumb { float: right; width: 160px; margin-left: 1em; }
        #search { width: 100%; max-width: 640px; font: inherit; padding: .3em; }
        #results { font-size: 14px; }
        #results .kind, .transcript .at { color: #777; font-variant-numeric: tabular-nums; margin-right: .5em; }
        .transcript { max-width: 640px; font-size: 14px; }
        .transcript p { margin: .2em 0; }
        .transcript a, #results a { color: inherit; text-decoration: none; }
        .transcript a:hover, #results a:hover { text-decoration: underline; }
        </style>
        </head>
        <body>
        <header>
        <h1>\(esc(m.course.title))</h1>

        """
        if let d = m.course.description { h += "<p>\(esc(d))</p>\n" }
        let t = m.totals
        h += "<p id=\"totals\">\(t.lectures) lectures: \(t.ready) ready, \(t.failed) failed, \(t.pending) pending · "
            + "\(clock(t.duration)) of video · \(megabytes(t.bytes)) · preset \(esc(m.preset.name)) · "
            + "\(esc(m.generator.name)) \(esc(m.generator.version)) · updated \(esc(m.updated))</p>\n</header>\n"

        let failures = m.lectures.filter { $0.status == .failed }
        if !failures.isEmpty {
            h += "<section id=\"failures\" class=\"failed\">\n<h2>Failed</h2>\n<ul>\n"
            for f in failures {
                h += "<li><a href=\"#lecture-\(esc(f.id))\">\(esc(f.title))</a>: \(esc(f.error?.reason ?? "unknown"))</li>\n"
            }
            h += "</ul>\n</section>\n"
        }
        // Search over search.json: chapter titles, slide text and what is said, each with its time.
        h += "<section id=\"find\"><input id=\"search\" type=\"search\" placeholder=\"Search titles, slides and what is said\" "
            + "aria-label=\"Search the course\"><ol id=\"results\"></ol></section>\n"
        for (n, e) in m.lectures.enumerated() { h += lecture(e, number: n + 1) }
        h += """
        <script>
        function clock(s) {
          s = Math.round(s);
          const mm = String(Math.floor(s / 60) % 60).padStart(2, '0'), ss = String(s % 60).padStart(2, '0');
          return s >= 3600 ? Math.floor(s / 3600) + ':' + mm + ':' + ss : Math.floor(s / 60) + ':' + ss;
        }
        function seek(id, t) {
          const v = document.getElementById('player-' + id);
          if (!v) return;
          v.scrollIntoView({behavior: 'smooth', block: 'center'});
          const go = () => { v.currentTime = t; v.play(); };
          if (v.readyState > 0) go(); else { v.preload = 'auto'; v.addEventListener('loadedmetadata', go, {once: true}); v.load(); }
        }
        function link(id, start, label, text) {
          const a = document.createElement('a');
          a.href = '#lecture-' + id;
          a.addEventListener('click', ev => { ev.preventDefault(); seek(id, start); });
          const at = document.createElement('span');
          at.className = 'at';
          at.textContent = label;
          a.append(at, document.createTextNode(text));
          return a;
        }
        // The course search: loaded on first use; every word typed must appear in an entry.
        let index = null;
        const box = document.getElementById('search'), results = document.getElementById('results');
        box.addEventListener('input', async () => {
          if (!index) index = await fetch('search.json').then(r => r.json()).catch(() => ({lectures: []}));
          const words = box.value.toLowerCase().split(/\\s+/).filter(w => w);
          results.replaceChildren();
          if (!words.length) return;
          let shown = 0;
          for (const l of index.lectures) for (const e of l.entries) {
            const text = e.text.toLowerCase();
            if (shown >= 50 || !words.every(w => text.includes(w))) continue;
            const li = document.createElement('li');
            li.append(link(l.id, e.start, l.title + ' · ' + clock(e.start) + ' · ' + e.kind, e.text));
            results.append(li);
            shown++;
          }
        });
        // Transcripts, fetched when opened; each line seeks the lecture's player.
        document.querySelectorAll('details.transcript').forEach(d => d.addEventListener('toggle', async () => {
          if (!d.open || d.dataset.loaded) return;
          d.dataset.loaded = '1';
          const t = await fetch(d.dataset.src).then(r => r.json()).catch(() => null);
          for (const s of (t && t.segments) || []) {
            const p = document.createElement('p');
            p.append(link(d.dataset.lecture, s.start, clock(s.start), s.text));
            d.append(p);
          }
        }));
        // Each lecture's connection choice sets its player's master; on a link the browser reports as
        // slow (Save-Data, a 2G effective type) the page starts on the slow-link master.
        const c = navigator.connection;
        const slow = c && (c.saveData || ['slow-2g', '2g'].includes(c.effectiveType));
        document.querySelectorAll('select.master').forEach(s => {
          const v = document.getElementById(s.dataset.player);
          if (slow) {
            const lite = [...s.options].find(o => o.dataset.name === 'lite');
            if (lite) { s.value = lite.value; v.src = lite.value; }
          }
          s.addEventListener('change', () => {
            const t = v.currentTime, playing = !v.paused;
            v.src = s.value;
            v.addEventListener('loadedmetadata', () => { v.currentTime = t; if (playing) v.play(); }, {once: true});
          });
        });
        // Chapter links seek the lecture's player.
        document.querySelectorAll('a[data-seek]').forEach(a => a.addEventListener('click', ev => {
          ev.preventDefault();
          const v = document.getElementById(a.dataset.player);
          v.currentTime = parseFloat(a.dataset.seek);
          v.play();
        }));
        </script>
        </body>
        </html>

        """
        return h
    }

    private static func lecture(_ e: CourseManifest.Entry, number: Int) -> String {
        var h = "<article class=\"lecture\" id=\"lecture-\(esc(e.id))\" data-status=\"\(e.status.rawValue)\">\n"
        h += "<h2>\(number). \(esc(e.title))</h2>\n"
        guard let l = e.lecture, e.status == .ready else {
            if e.status == .failed {
                h += "<p class=\"failed\">Failed (\(esc(e.error?.category.rawValue ?? ""))): \(esc(e.error?.reason ?? ""))</p>\n"
            } else {
                h += "<p class=\"pending\">Pending: not packaged yet.</p>\n"
            }
            return h + "<p class=\"meta\">Source: \(esc(e.source))</p>\n</article>\n"
        }
        if let small = l.poster?.small { h += "<img class=\"thumb\" src=\"\(esc(small))\" alt=\"\">\n" }
        h += "<p class=\"meta\">\(clock(l.duration)) · source \(esc(e.source)) · \(l.chapters.count) chapters · \(l.captions.count) caption tracks</p>\n"
        let poster = l.poster.map { " poster=\"\(esc($0.full))\"" } ?? ""
        h += "<video id=\"player-\(esc(e.id))\" controls preload=\"none\" playsinline\(poster) src=\"\(esc(l.master))\"></video>\n"
        // The link-class masters (README, "Serving a package"): the learner picks one, and the page
        // picks lite.m3u8 itself on a link the browser reports as slow.
        let choices = l.masters.filter { $0.name != "opus" }
        if choices.count > 1 {
            h += "<p class=\"link\"><label>Connection: <select class=\"master\" data-player=\"player-\(esc(e.id))\">"
            for m in choices {
                let label = ["full": "Any (adapts)", "lite": "Slow link", "min": "Weakest link"][m.name] ?? m.name
                h += "<option value=\"\(esc(m.playlist))\" data-name=\"\(esc(m.name))\">\(label), up to \(m.peakBitrate / 1000) kb/s</option>"
            }
            h += "</select></label></p>\n"
        }
        if let t = l.transcript {
            let language = t.language.map { Locale(identifier: "en").localizedString(forLanguageCode: $0) ?? $0 } ?? "the lecture's language"
            h += "<details class=\"transcript\" data-src=\"\(esc(t.json))\" data-lecture=\"\(esc(e.id))\"><summary>Transcript (\(esc(language)), "
                + "made from the speech) · <a href=\"\(esc(t.text))\">text</a></summary></details>\n"
        }
        if !l.chapters.isEmpty {
            h += "<ol class=\"chapters\">\n"
            for c in l.chapters {
                h += "<li><a href=\"\(esc(l.master))\" data-player=\"player-\(esc(e.id))\" data-seek=\"\(c.start)\">\(clock(c.start))</a> "
                    + "\(esc(c.title))</li>\n"
            }
            h += "</ol>\n"
        }
        h += "<table class=\"renditions\">\n<tr><th>rendition</th><th>size</th><th>average kb/s</th><th>peak kb/s</th><th>MB per hour</th><th>MB</th></tr>\n"
        for r in l.renditions + l.audio {
            let size = r.width.map { "\($0)x\(r.height ?? 0)\(r.audio.map { " + \($0)" } ?? "")" } ?? "audio\(r.audioOnly == true ? " only" : "")"
            h += "<tr><td>\(esc(r.name))</td><td>\(size)</td><td>\(r.averageBitrate / 1000)</td><td>\(r.peakBitrate / 1000)</td>"
                + "<td>\(String(format: "%.1f", r.megabytesPerHour))</td><td>\(megabytes(r.bytes))</td></tr>\n"
        }
        h += "</table>\n"
        if !l.downloads.isEmpty {
            h += "<p>Downloads: " + l.downloads.map { "<a href=\"\(esc($0.path))\" download>\($0.kind == "video" ? "MP4" : "M4A") (\(megabytes($0.bytes)))</a>" }
                .joined(separator: " · ") + "</p>\n"
        }
        return h + "</article>\n"
    }

    static func esc(_ s: String) -> String {
        var out = ""
        for ch in s {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(ch)
            }
        }
        return out
    }

    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }

    static func megabytes(_ bytes: Int) -> String { String(format: "%.1f MB", Double(bytes) / 1e6) }
}
