#!/usr/bin/env python3
"""The PostgreSQL job store under load: queue overhead and course throughput through the API.

Starts a throwaway PostgreSQL cluster (as the postgres user when run as root), one API server
(`coursepack-server serve`, workers 0) and `coursepack-server worker` processes, all from the release build, and
measures:

1. wake-up latency: jobs submitted one at a time to idle workers; time from submission (created)
   to claim (started), p50/p99, from the job rows;
2. queue throughput: N tiny jobs (a 1-s 160x90 clip, preset minimal) submitted at once to 4 workers:
   jobs per second end to end, and created-to-started p50/p99;
3. course throughput: a course of lectures (lecture720 cut into pieces) through the API with 1, 2
   and 3 workers on this machine: wall seconds until all succeeded, media seconds per wall second;
4. the store's own ceiling, without child processes: pgbench running a job's whole life in the
   store's SQL (the lost-lease sweep and the claim, one heartbeat, the fenced finish; the statements
   of Sources/Server/PostgresJobStore.swift) with 8 clients on 50,000 queued jobs, and the heartbeat
   alone, in transactions per second.

Usage: queue_bench.py [--tiny 300] [--lectures 6] [--append]
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".build/release/coursepack-server"  # serve and worker; each lecture runs in the coursepack beside it
CACHE = Path.home() / ".cache/coursepack-bench"
TOKEN = "bench-token-0123456789abcdef"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def as_postgres(cmd):
    return (["runuser", "-u", "postgres", "--"] + cmd) if os.getuid() == 0 else cmd


class Cluster:
    def __init__(self, folder):
        self.folder = folder
        self.port = free_port()
        versions = sorted(int(v) for v in os.listdir("/usr/lib/postgresql") if v.isdigit())
        self.bin = f"/usr/lib/postgresql/{versions[-1]}/bin"
        os.makedirs(folder, exist_ok=True)
        if os.getuid() == 0:
            shutil.chown(folder, "postgres", "postgres")
        subprocess.run(as_postgres([f"{self.bin}/initdb", "-D", f"{folder}/data", "-U", "coursepack", "--auth=trust",
                                    "-E", "UTF8", "--no-sync"]), check=True, capture_output=True)
        # Durable settings (fsync on), as a real deployment would run.
        subprocess.run(as_postgres([f"{self.bin}/pg_ctl", "-D", f"{folder}/data", "-l", f"{folder}/log", "-w", "-o",
                                    f"-p {self.port} -k {folder} -c listen_addresses=127.0.0.1 -c max_connections=200", "start"]),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def createdb(self, name):
        self.sql(f"CREATE DATABASE {name}")
        return f"postgres://coursepack@127.0.0.1:{self.port}/{name}"

    def sql(self, statement, db="postgres"):
        return subprocess.run(["psql", "-X", "-q", "-A", "-t", "-h", "127.0.0.1", "-p", str(self.port), "-U", "coursepack",
                               "-d", db, "-c", statement], check=True, capture_output=True, text=True).stdout

    def stop(self):
        subprocess.run(as_postgres([f"{self.bin}/pg_ctl", "-D", f"{self.folder}/data", "-m", "fast", "stop"]),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Deployment:
    """One API server and `workers` worker processes on one database."""

    def __init__(self, work, cluster, name, workers, inputs):
        self.db = name
        self.url = cluster.createdb(name)
        self.cluster = cluster
        self.port = free_port()
        folder = Path(work) / name
        folder.mkdir(parents=True)
        self.out = folder / "out"
        config = {"port": self.port, "inputRoots": [str(inputs)], "outputRoot": str(self.out), "dataDirectory": str(folder / "data"),
                  "workers": 0, "presets": ["lecture", "minimal"]}
        (folder / "config.json").write_text(json.dumps(config))
        env = dict(os.environ, COURSEPACK_API_TOKEN=TOKEN, COURSEPACK_DATABASE_URL=self.url,
                   COURSEPACK_PRESETS=str(ROOT / "Presets"))
        self.procs = [subprocess.Popen([str(BIN), "serve", "--config", str(folder / "config.json")], env=env,
                                       stdout=subprocess.DEVNULL, stderr=open(folder / "serve.log", "w"))]
        for i in range(workers):
            self.procs.append(subprocess.Popen([str(BIN), "worker", "--name", f"w{i}", "--scratch", str(folder / f"scratch{i}")],
                                               env=env, stdout=subprocess.DEVNULL, stderr=open(folder / f"w{i}.log", "w")))
        for _ in range(200):
            try:
                self.call("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.05)
        time.sleep(1)  # workers connected and listening

    def call(self, method, path, body=None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read() or b"{}")

    def submit(self, source, course, lecture, preset):
        return self.call("POST", "/v1/jobs", {"source": str(source), "courseId": course, "lectureId": lecture, "preset": preset})["id"]

    def wait_all(self, n, timeout=3600):
        deadline = time.time() + timeout
        while time.time() < deadline:
            done = int(self.cluster.sql("SELECT count(*) FROM job WHERE state IN ('succeeded','failed','cancelled')", self.db))
            if done >= n:
                return
            time.sleep(0.2)
        raise SystemExit(f"{self.db}: jobs did not finish")

    def latencies(self):
        """created-to-started seconds of each job's first run, from the store."""
        rows = self.cluster.sql("SELECT extract(epoch FROM r.started - j.created) FROM job j JOIN run r ON r.job_id = j.id "
                                "WHERE r.started = (SELECT min(started) FROM run WHERE job_id = j.id)", self.db)
        return sorted(float(x) for x in rows.split())

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait(timeout=120)


def pct(values, p):
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny", type=int, default=300)
    ap.add_argument("--lectures", type=int, default=6)
    ap.add_argument("--lecture-seconds", type=int, default=40)
    ap.add_argument("--append", action="store_true")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="coursepack-queue-")
    os.chmod(work, 0o755)
    inputs = Path(work) / "in"
    inputs.mkdir()
    tiny = inputs / "tiny.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25", "-f", "lavfi", "-i", "sine",
                    "-t", "1", "-c:v", "libx264", "-c:a", "aac", str(tiny)], check=True)
    lectures = []
    for i in range(args.lectures):
        p = inputs / f"lecture{i:02d}.mp4"
        subprocess.run(["ffmpeg", "-v", "error", "-ss", str(i * 10 % 80), "-i", str(CACHE / "lecture720.mp4"), "-t",
                        str(args.lecture_seconds), "-c", "copy", str(p)], check=True)
        lectures.append(p)
    cluster = Cluster(f"{work}/pg")
    lines = []
    try:
        # 1. Wake-up latency with idle workers.
        d = Deployment(work, cluster, "wake", 4, inputs)
        for i in range(40):
            d.submit(tiny, "wake", f"l{i}", "minimal")
            d.wait_all(i + 1)
            time.sleep(0.2)
        wake = d.latencies()
        d.stop()
        lines.append(f"- Wake-up, idle workers (40 jobs submitted one at a time, 4 workers): submission to claim "
                     f"p50 {pct(wake, 50) * 1000:.0f} ms, p99 {pct(wake, 99) * 1000:.0f} ms")

        # 2. Throughput of tiny jobs.
        d = Deployment(work, cluster, "tiny", 4, inputs)
        t0 = time.time()
        for i in range(args.tiny):
            d.submit(tiny, "tiny", f"l{i}", "minimal")
        submitted = time.time() - t0
        d.wait_all(args.tiny)
        wall = time.time() - t0
        runs = [float(x) for x in cluster.sql("SELECT extract(epoch FROM ended - started) FROM run WHERE outcome = 'succeeded'", "tiny").split()]
        ok = int(cluster.sql("SELECT count(*) FROM job WHERE state = 'succeeded'", "tiny"))
        d.stop()
        lines.append(f"- {args.tiny} tiny jobs (1-s 160x90 clip, preset minimal) submitted at once to 4 workers: {ok} succeeded, "
                     f"submitted in {submitted:.1f} s ({args.tiny / submitted:.0f} submissions/s), all done in {wall:.1f} s: "
                     f"**{args.tiny / wall:.1f} jobs/s**; a run (claim to recorded end, child process included) "
                     f"p50 {statistics.median(runs) * 1000:.0f} ms")

        # 3. Course throughput with 1, 2, 3 workers.
        media = args.lectures * args.lecture_seconds
        for n in (1, 2, 3):
            d = Deployment(work, cluster, f"course{n}", n, inputs)
            t0 = time.time()
            for i, p in enumerate(lectures):
                d.submit(p, "course", f"l{i}", "lecture")
            d.wait_all(len(lectures))
            wall = time.time() - t0
            ok = int(cluster.sql("SELECT count(*) FROM job WHERE state = 'succeeded'", f"course{n}"))
            d.stop()
            lines.append(f"- Course of {args.lectures} lectures x {args.lecture_seconds} s (lecture720 cuts, preset lecture), "
                         f"{n} worker process(es): {ok} succeeded in {wall:.1f} s wall, {media / wall:.2f} media s per wall s")
        # 4. The store's ceiling.
        d = Deployment(work, cluster, "ceiling", 0, inputs)  # migrates the schema
        d.stop()
        cluster.sql("""INSERT INTO job (id, state, course_id, lecture_id, source, preset, captions, not_before, created, updated)
                       SELECT 'job_' || g, 'queued', 'c', 'l' || g, '/x', 'minimal', '[]', to_timestamp(0), to_timestamp(g), to_timestamp(g)
                       FROM generate_series(1, 50000) g""", "ceiling")
        life = Path(work) / "life.sql"
        life.write_text("""BEGIN;
WITH lost AS (SELECT id FROM job WHERE state = 'running' AND lease_expires < cp_now() FOR UPDATE SKIP LOCKED)
UPDATE job SET state = 'failed' WHERE id IN (SELECT id FROM lost) AND attempts >= max_attempts;
WITH next AS (SELECT id FROM job WHERE (state = 'queued' AND not_before <= cp_now()) OR (state = 'running' AND lease_expires < cp_now())
              ORDER BY created, id LIMIT 1 FOR UPDATE SKIP LOCKED)
UPDATE job SET state = 'running', lease_owner = 'bench', lease_token = (random() * 1e15)::bigint::text, lease_expires = cp_after(60),
  attempts = attempts + 1, started = cp_now(), updated = cp_now(), progress = 0, cancel_requested = false
FROM next WHERE job.id = next.id RETURNING substr(job.id, 5)::int AS n, job.lease_token::bigint AS token \\gset
INSERT INTO run (job_id, worker, token, started) VALUES ('job_' || :n, 'bench', :token::text, cp_now());
COMMIT;
UPDATE job SET lease_expires = cp_after(60), progress = 50, updated = cp_now()
WHERE id = 'job_' || :n AND lease_token = :token::text AND state = 'running' AND lease_expires >= cp_now() RETURNING cancel_requested;
BEGIN;
SELECT 1 FROM job WHERE id = 'job_' || :n AND lease_token = :token::text AND state = 'running' AND lease_expires >= cp_now() FOR UPDATE;
UPDATE job SET state = 'succeeded', progress = 100, finished = cp_now(), updated = cp_now(), lease_owner = NULL, lease_token = NULL
WHERE id = 'job_' || :n;
UPDATE run SET ended = cp_now(), outcome = 'succeeded' WHERE token = :token::text;
COMMIT;
""")
        beat = Path(work) / "beat.sql"
        beat.write_text("""\\set n random(1, 50000)
UPDATE job SET lease_expires = cp_after(60), progress = 50, updated = cp_now() WHERE id = 'job_' || :n;
""")
        def pgbench(script, seconds):
            r = subprocess.run([f"{cluster.bin}/pgbench", "-n", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "coursepack",
                                "-c", "8", "-j", "2", "-T", str(seconds), "-f", str(script), "ceiling"],
                               capture_output=True, text=True, check=True)
            tps = [l for l in r.stdout.splitlines() if l.startswith("tps")]
            return float(tps[0].split("=")[1].split()[0])
        lives = pgbench(life, 15)
        done = int(cluster.sql("SELECT count(*) FROM job WHERE state = 'succeeded'", "ceiling"))
        beats = pgbench(beat, 10)
        lines.append(f"- The store alone (pgbench, 8 clients, 50,000 queued jobs, fsync on): a job's whole life in the store "
                     f"(sweep + claim, one heartbeat, fenced finish) **{lives:.0f} jobs/s** ({done} jobs in 15 s); "
                     f"heartbeats alone **{beats:.0f}/s**")
    finally:
        cluster.stop()
    text = "\n".join(lines)
    print(text)
    if args.append:
        with open(ROOT / "BENCHMARKS.md", "a") as f:
            f.write(f"\n## {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} — PostgreSQL job store "
                    f"(`python3 bench/queue_bench.py --tiny {args.tiny} --lectures {args.lectures}`)\n\n"
                    f"Release build, one API server and `coursepack worker` processes on this 2-core machine, "
                    f"PostgreSQL 15 on loopback with fsync on.\n\n{text}\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
