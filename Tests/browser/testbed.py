#!/usr/bin/env python3
"""A weak link as learners meet it: nginx serving packages over a shaped, delayed loopback link.

    with Testbed(kbps=150, rtt_ms=300, cacheable=False) as tb:
        tb.publish("lecture", "/path/to/package")       # served at tb.url("lecture/master.m3u8")
        tb.run([sys.executable, "players.py", ...])      # runs inside the namespace

Everything lives in a network namespace the testbed makes and removes itself (`ip netns`, root):
- nginx from Debian's packages serves the packages on 127.0.0.1:8080 with its default static-file
  headers (`Last-Modified`, `ETag`, ranges, 304 on revalidation), or, with `cacheable`, also
  `Cache-Control: public, max-age=3600` as a CDN configuration would;
- `relay.py` listens on 127.0.0.1:8081 and forwards to nginx, adding half the RTT (plus jitter) in
  each direction: this kernel has no netem qdisc;
- the namespace's `lo` (MTU and GSO size set to 1500, so the shaper sees packets of a real link)
  carries an htb qdisc: the relay's traffic to and from the player is limited to `kbps` each way,
  behind a FIFO of `queue_s` seconds at that rate (the buffer of a cell); the rest is not shaped.
Players fetch the media from 127.0.0.1:8081 inside the namespace (`run`); their pages and scripts
come from nginx directly (`page_url`), as from a browser's cache. No other address is used. The
access log (`requests()`) lists what the players fetched, with nginx's own timings.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
NGINX_PORT, LINK_PORT = 8080, 8081

TYPES = """
types {
    text/html html;
    application/javascript js;
    text/css css;
    application/json json;
    application/vnd.apple.mpegurl m3u8;
    video/mp4 mp4 m4s m4v;
    audio/mp4 m4a;
    text/vtt vtt;
    image/jpeg jpg jpeg;
    image/webp webp;
    font/woff woff;
}
"""


def stop(p):
    """Ends process `p`: SIGTERM, then SIGKILL after 5 s."""
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def sh(*cmd, check=True):
    return subprocess.run(list(cmd), check=check, capture_output=True, text=True)


class Testbed:
    def __init__(self, kbps, rtt_ms, cacheable=False, jitter_ms=None, queue_s=2.0):
        self.kbps, self.rtt_ms, self.cacheable = kbps, rtt_ms, cacheable
        self.jitter_ms = rtt_ms / 10 if jitter_ms is None else jitter_ms
        self.queue_s = queue_s
        self.ns = f"cpwl-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.dir = Path(tempfile.mkdtemp(prefix="cpwl-"))
        self.www = self.dir / "www"
        self.www.mkdir()
        self.procs = []

    # ---------- set up and tear down ----------

    def __enter__(self):
        try:
            self._netns()
            self._shape()
            self._nginx()
            self._relay()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def exec_prefix(self):
        return ["ip", "netns", "exec", self.ns]

    def _netns(self):
        sh("ip", "netns", "add", self.ns)
        ns = self.exec_prefix()
        sh(*ns, "ip", "link", "set", "lo", "mtu", "1500")
        sh(*ns, "ip", "link", "set", "dev", "lo", "gso_max_size", "1500")
        sh(*ns, "ip", "link", "set", "lo", "up")

    def _shape(self):
        ns = self.exec_prefix() + ["tc"]
        rate = f"{self.kbps}kbit"
        limit = max(3000, int(self.kbps * 1000 / 8 * self.queue_s))
        sh(*ns, "qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "1", "r2q", "1")
        sh(*ns, "class", "add", "dev", "lo", "parent", "1:", "classid", "1:1", "htb", "rate", "1gbit", "quantum", "60000")
        for cls, match in (("1:10", "sport"), ("1:20", "dport")):  # to the player, from the player
            sh(*ns, "class", "add", "dev", "lo", "parent", "1:", "classid", cls, "htb", "rate", rate, "ceil", rate,
               "burst", "1600", "cburst", "1600", "quantum", "1514")
            sh(*ns, "qdisc", "add", "dev", "lo", "parent", cls, "bfifo", "limit", str(limit))
            sh(*ns, "filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "prio", "1", "u32",
               "match", "ip", match, str(LINK_PORT), "0xffff", "flowid", cls)

    def _nginx(self):
        conf = self.dir / "nginx.conf"
        headers = 'add_header Cache-Control "public, max-age=3600";' if self.cacheable else ""
        for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.dir / d).mkdir()
        conf.write_text(f"""
user root;
worker_processes 1;
daemon off;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
    {TYPES}
    default_type application/octet-stream;
    log_format timed '$msec $status $body_bytes_sent $request_time "$request" "$http_range" "$http_if_modified_since" "$http_if_none_match"';
    access_log {self.dir}/access.log timed;
    client_body_temp_path {self.dir}/client_body;
    proxy_temp_path {self.dir}/proxy;
    fastcgi_temp_path {self.dir}/fastcgi;
    uwsgi_temp_path {self.dir}/uwsgi;
    scgi_temp_path {self.dir}/scgi;
    sendfile on;
    keepalive_timeout 65;
    server {{
        listen 127.0.0.1:{NGINX_PORT};
        root {self.www};
        # The player pages are served unshaped on this port (a learner's browser has its player
        # script cached); an MSE player there fetches the media across origins, from the link.
        add_header Access-Control-Allow-Origin "*";
        {headers}
    }}
}}
""")
        self.procs.append(subprocess.Popen(self.exec_prefix() + ["nginx", "-c", str(conf), "-p", str(self.dir)],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        self._wait_port(NGINX_PORT, self.procs[-1], "nginx")

    def _relay(self):
        half = self.rtt_ms / 2
        p = subprocess.Popen(self.exec_prefix() + [sys.executable, str(HERE / "relay.py"), str(LINK_PORT), str(NGINX_PORT),
                                                   str(half), str(self.jitter_ms / 2)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        if p.stdout.readline().strip() != "ready":
            raise RuntimeError(f"relay did not start: {p.stderr.read()[-400:]}")

    def _wait_port(self, port, proc, name, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited: {proc.stderr.read()[-400:] if proc.stderr else ''}")
            r = subprocess.run(self.exec_prefix() + ["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}"],
                               capture_output=True)
            if r.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"{name} is not listening on {port}")

    def close(self):
        for p in reversed(self.procs):
            stop(p)
        self.procs = []
        sh("ip", "netns", "del", self.ns, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    # ---------- use ----------

    def publish(self, name, path):
        """Serves the folder `path` at /name/ (a symbolic link nginx follows)."""
        link = self.www / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(Path(path).resolve())

    def add_file(self, name, data):
        p = self.www / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data if isinstance(data, bytes) else data.encode())

    def url(self, path=""):
        """`path` over the shaped link."""
        return f"http://127.0.0.1:{LINK_PORT}/{path.lstrip('/')}"

    def page_url(self, path=""):
        """`path` straight from nginx, not over the link: for the player pages and scripts."""
        return f"http://127.0.0.1:{NGINX_PORT}/{path.lstrip('/')}"

    def run(self, cmd, timeout=None):
        """Runs `cmd` inside the namespace; returns the CompletedProcess."""
        return subprocess.run(self.exec_prefix() + list(cmd), capture_output=True, text=True, timeout=timeout)

    def mark(self):
        """The access log's length now: `requests(since=...)` lists only what came after."""
        log = self.dir / "access.log"
        return log.stat().st_size if log.exists() else 0

    def requests(self, since=0):
        """What nginx served after `since`: [{t, status, bytes, seconds, path, range, ims, inm}]."""
        log = self.dir / "access.log"
        if not log.exists():
            return []
        rows = []
        with open(log, "rb") as f:
            f.seek(since)
            for line in f.read().decode(errors="replace").splitlines():
                head, _, rest = line.partition(' "')
                parts = head.split()
                quoted = ('"' + rest).split('" "')
                quoted = [q.strip('"') for q in quoted]
                req = quoted[0].split()
                rows.append({"t": float(parts[0]), "status": int(parts[1]), "bytes": int(parts[2]),
                             "seconds": float(parts[3]), "path": req[1] if len(req) > 1 else "",
                             "range": quoted[1] if len(quoted) > 1 else "-",
                             "ims": quoted[2] if len(quoted) > 2 else "-", "inm": quoted[3] if len(quoted) > 3 else "-"})
        return rows


def main():
    """Serves a package over a shaped link for a look by hand: testbed.py PACKAGE KBPS RTT_MS [--cacheable]."""
    pkg, kbps, rtt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with Testbed(kbps, rtt, cacheable="--cacheable" in sys.argv) as tb:
        tb.publish("p", pkg)
        t = time.time()
        r = tb.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}", tb.url("p/master.m3u8")])
        print(json.dumps({"namespace": tb.ns, "curl": r.stdout, "wall": round(time.time() - t, 3), "log": tb.requests()}))


if __name__ == "__main__":
    main()
