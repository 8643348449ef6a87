import Mustache

/// The operator pages' Mustache templates. `{{name}}` escapes HTML, so titles, paths, reasons and
/// URLs a job carries show as text; no template uses the unescaped forms. The pages load nothing
/// from outside the server: one stylesheet inline, one script (`liveScript`) from /ui/live.js.
enum DashboardTemplates {
    static func library() throws -> MustacheLibrary {
        var library = MustacheLibrary()
        for (name, text) in templates { try library.register(text, named: name) }
        return library
    }

    /// Keeps a page's `#live` element current: fetches its `data-src` fragment every 1.5 s; a lecture
    /// page's master picker switches the player's playlist.
    static let liveScript = """
        (function () {
          var live = document.getElementById('live');
          if (live) {
            setInterval(function () {
              fetch(live.getAttribute('data-src'), {credentials: 'same-origin', cache: 'no-store'})
                .then(function (r) { if (r.status === 401) { location.href = '/ui/login'; return null; } return r.ok ? r.text() : null; })
                .then(function (t) { if (t !== null) { live.innerHTML = t; } })
                .catch(function () {});
            }, 1500);
          }
          var pick = document.getElementById('master');
          var video = document.getElementById('player');
          if (pick && video) { pick.addEventListener('change', function () { video.src = pick.value; video.play(); }); }
        })();
        """

    static let templates: [String: String] = [
        "head": """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>{{title}} · CoursePack</title>
            <style>
            body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
            header{background:#1f3b57;color:#fff;padding:.5em 1em;display:flex;flex-wrap:wrap;gap:1em;align-items:center}
            header a{color:#fff;font-weight:600;text-decoration:none}
            main{padding:1em;max-width:70em;margin:auto}
            table{border-collapse:collapse;width:100%;background:#fff}
            th,td{text-align:left;padding:.35em .5em;border-bottom:1px solid #e1e4e8;vertical-align:top}
            .state{font-weight:600;white-space:nowrap}.failed{color:#b3261e}.running{color:#0b63c5}.succeeded{color:#1e7b34}
            .reason{color:#b3261e;font-size:.9em;word-break:break-word}.muted{color:#667}
            form.inline{display:inline}button{font:inherit;padding:.25em .8em}
            .error{background:#fde8e6;border:1px solid #b3261e;padding:.5em;margin:.5em 0}
            video,img.poster{max-width:100%;background:#000}
            .chapters{display:grid;grid-template-columns:repeat(auto-fill,minmax(11em,1fr));gap:.6em}
            .chapters figure{margin:0;background:#fff;padding:.3em}.chapters img{width:100%}
            @media (max-width:40em){.wide{display:none}}
            </style></head><body>
            <header><span>CoursePack</span><a href="/ui/">Jobs</a><a href="/ui/workers">Workers</a>
            {{#csrf}}<form class="inline" method="post" action="/ui/logout"><input type="hidden" name="csrf" value="{{csrf}}"><button>Sign out</button></form>{{/csrf}}
            </header><main>
            """,
        "foot": """
            </main><script src="/ui/live.js"></script></body></html>
            """,
        "login": """
            {{> head}}
            <h1>Sign in</h1>
            {{#error}}<p class="error">{{error}}</p>{{/error}}
            <form method="post" action="/ui/login">
            <label>API token <input type="password" name="token" autocomplete="current-password" required autofocus></label>
            <button type="submit">Sign in</button>
            </form>
            {{> foot}}
            """,
        "jobs": """
            {{> head}}
            <h1>Jobs</h1>
            <form method="get" action="/ui/">
            <label>Course <input name="course" value="{{course}}" size="12"></label>
            <label>State <select name="state"><option value="">any</option>
            {{#states}}<option value="{{name}}"{{#selected}} selected{{/selected}}>{{name}} ({{count}})</option>{{/states}}
            </select></label>
            <button>Show</button>
            </form>
            <div id="live" data-src="/ui/fragments/jobs?{{query}}">{{> jobs_table}}</div>
            {{> foot}}
            """,
        "jobs_table": """
            {{#empty}}<p class="muted">No jobs.</p>{{/empty}}
            {{^empty}}<table id="jobs"><thead><tr><th>State</th><th>Lecture</th><th class="wide">Course</th><th>Progress</th><th class="wide">Tries</th><th class="wide">Updated</th></tr></thead><tbody>
            {{#jobs}}<tr class="job" data-id="{{id}}" data-state="{{state}}">
            <td class="state {{state}}">{{state}}</td>
            <td><a href="/ui/jobs/{{id}}">{{title}}</a>{{#error}}<div class="reason">{{category}}: {{reason}}</div>{{/error}}</td>
            <td class="wide">{{course}}</td>
            <td>{{#running}}{{progress}}%{{#eta}} · {{eta}} left{{/eta}}{{#worker}} · on {{worker}}{{/worker}}{{/running}}{{#position}}#{{position}} in queue{{/position}}</td>
            <td class="wide">{{attempts}}</td>
            <td class="wide muted">{{updated}}</td>
            </tr>{{/jobs}}
            </tbody></table>{{/empty}}
            """,
        "job": """
            {{> head}}
            <p><a href="/ui/">← Jobs</a></p>
            <h1>{{title}}</h1>
            <div id="live" data-src="/ui/fragments/jobs/{{id}}">{{> job_detail}}</div>
            {{> foot}}
            """,
        "job_detail": """
            <p class="state {{state}}" id="state">{{state}}{{#running}} · {{progress}}%{{#eta}} · {{eta}} left{{/eta}}{{/running}}</p>
            {{#error}}<p class="error" id="failure"><b>{{category}}</b>: {{reason}}</p>{{/error}}
            <p>
            {{#retryable}}<form class="inline" method="post" action="/ui/jobs/{{id}}/retry"><input type="hidden" name="csrf" value="{{csrf}}"><button id="retry">Retry</button></form>{{/retryable}}
            {{#cancellable}}<form class="inline" method="post" action="/ui/jobs/{{id}}/cancel"><input type="hidden" name="csrf" value="{{csrf}}"><button id="cancel">Cancel</button></form>{{/cancellable}}
            {{#succeeded}}<a id="preview" href="/ui/lectures/{{id}}">Preview the lecture</a>{{/succeeded}}
            </p>
            <table>
            <tr><th>Job</th><td>{{id}}</td></tr>
            <tr><th>Course / lecture</th><td>{{course}} / {{lecture}}</td></tr>
            <tr><th>Source</th><td>{{source}}</td></tr>
            <tr><th>Preset</th><td>{{preset}}</td></tr>
            <tr><th>Package</th><td>{{package}}</td></tr>
            <tr><th>Tries</th><td>{{attempts}}</td></tr>
            <tr><th>Submitted</th><td>{{created}}</td></tr>
            <tr><th>Started</th><td>{{started}}</td></tr>
            <tr><th>Finished</th><td>{{finished}}</td></tr>
            {{#webhook}}<tr><th>Webhook</th><td>{{url}}: {{state}} after {{attempts}} tries{{#lastError}} ({{lastError}}){{/lastError}}</td></tr>{{/webhook}}
            </table>
            <h2>Runs</h2>
            <table id="runs"><thead><tr><th>#</th><th>Worker</th><th>Started</th><th>Took</th><th>Outcome</th></tr></thead><tbody>
            {{#runs}}<tr><td>{{n}}</td><td>{{worker}}</td><td>{{started}}</td><td>{{took}}</td><td>{{outcome}}{{#failure}}<div class="reason">{{category}}: {{reason}}</div>{{/failure}}</td></tr>{{/runs}}
            </tbody></table>
            """,
        "workers": """
            {{> head}}
            <h1>Workers</h1>
            <div id="live" data-src="/ui/fragments/workers">{{> workers_table}}</div>
            {{> foot}}
            """,
        "workers_table": """
            {{#empty}}<p class="muted">No worker has reported.</p>{{/empty}}
            {{^empty}}<table id="workers"><thead><tr><th>Name</th><th>State</th><th>Last heartbeat</th><th>Jobs in hand</th><th class="wide">Host</th><th class="wide">Done</th><th class="wide">Started</th></tr></thead><tbody>
            {{#workers}}<tr class="worker" data-name="{{name}}" data-state="{{state}}"><td>{{name}}</td><td class="state">{{state}}{{#gone}} (gone){{/gone}}</td><td>{{heartbeat}}</td>
            <td>{{#jobs}}<a href="/ui/jobs/{{id}}">{{id}}</a> {{/jobs}}</td><td class="wide">{{host}}</td><td class="wide">{{finished}}</td><td class="wide muted">{{started}}</td></tr>{{/workers}}
            </tbody></table>{{/empty}}
            """,
        "lecture": """
            {{> head}}
            <p><a href="/ui/jobs/{{id}}">← Job</a></p>
            <h1>{{title}}</h1>
            <p class="muted">{{duration}}</p>
            <label>Master <select id="master">{{#masters}}<option value="{{url}}"{{#first}} selected{{/first}}>{{name}} (peak {{peak}} kb/s)</option>{{/masters}}</select></label>
            {{#masters}}{{#first}}<video id="player" controls preload="metadata" src="{{url}}"{{#poster}} poster="{{poster}}"{{/poster}}></video>{{/first}}{{/masters}}
            <h2>Renditions</h2>
            <table id="renditions"><thead><tr><th>Name</th><th>Picture</th><th>Peak kb/s</th><th>Average kb/s</th></tr></thead><tbody>
            {{#renditions}}<tr><td>{{name}}</td><td>{{size}}</td><td>{{peak}}</td><td>{{average}}</td></tr>{{/renditions}}
            </tbody></table>
            {{#hasCaptions}}<h2>Captions</h2><ul>{{#captions}}<li>{{name}} ({{language}})</li>{{/captions}}</ul>{{/hasCaptions}}
            <h2>Chapters</h2>
            <div class="chapters" id="chapters">{{#chapters}}<figure><img src="{{still}}" alt="" loading="lazy"><figcaption>{{start}} · {{title}}</figcaption></figure>{{/chapters}}</div>
            {{#storyboard}}<h2>Storyboard</h2><img src="{{storyboard}}" alt="storyboard" style="max-width:100%">{{/storyboard}}
            {{#transcript}}<h2>Transcript</h2><details><summary>Show</summary><pre style="white-space:pre-wrap">{{transcript}}</pre></details>{{/transcript}}
            {{> foot}}
            """,
    ]
}
