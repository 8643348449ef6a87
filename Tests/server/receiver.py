#!/usr/bin/env python3
"""A webhook receiver for tests: appends each POST body as one line to OUTFILE and answers 204.

Usage: receiver.py PORT OUTFILE [SECRET]
With SECRET, a body whose X-CoursePack-Signature is not "sha256=" + HMAC-SHA256(SECRET, body) is
answered 401 and not kept.
"""
import hashlib
import hmac
import http.server
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if len(sys.argv) > 3:
            expected = "sha256=" + hmac.new(sys.argv[3].encode(), body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, self.headers.get("X-CoursePack-Signature", "")):
                self.send_response(401)
                self.end_headers()
                return
        with open(sys.argv[2], "ab") as f:
            f.write(body.replace(b"\n", b" ") + b"\n")
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
