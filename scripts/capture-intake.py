#!/usr/bin/env python3
"""A capturing Elastic APM intake for trying the examples without an APM Server.

    python3 scripts/capture-intake.py [--port 8200] [--out target/captured.ndjson]
    ELASTIC_APM_SERVER_URL=http://127.0.0.1:8200 cargo run --example thread_pool_requests

Accepts `POST /intake/v2/events` (gzip, deflate or plain NDJSON), answers 202, appends every
line to the output file and prints one line per request: how many events of each type. It also
answers `GET /` (a server version) and central configuration (`404`: none), as APM Server does.
Ctrl-C prints the totals. Standard library only.
"""

import argparse
import collections
import gzip
import http.server
import json
import sys
import threading
import zlib

totals = collections.Counter()
lock = threading.Lock()


def decode(body, encoding):
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    return body


class Intake(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        length = self.headers.get("Content-Length")
        if length is not None:
            body = self.rfile.read(int(length))
        else:
            # Chunked: the agent streams its requests.
            chunks = []
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            body = b"".join(chunks)
        try:
            text = decode(body, self.headers.get("Content-Encoding", "")).decode()
        except (OSError, zlib.error, UnicodeDecodeError) as e:
            self.answer(400, {"error": f"cannot decode the body: {e}"})
            return
        kinds = collections.Counter()
        with lock, open(self.server.out, "a") as out:
            for line in text.splitlines():
                if not line.strip():
                    continue
                kinds.update(json.loads(line).keys())
                out.write(line + "\n")
            totals.update(kinds)
        print(f"{self.path}: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())), flush=True)
        self.answer(202, None)

    def do_GET(self):
        if self.path == "/":
            self.answer(200, {"version": "8.15.0"})
        else:
            self.answer(404, {"error": "no central configuration here"})

    def answer(self, status, obj):
        data = b"" if obj is None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8200)
    parser.add_argument("--out", default="target/captured.ndjson")
    args = parser.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Intake)
    server.out = args.out
    open(args.out, "w").close()
    print(f"capturing on http://127.0.0.1:{args.port}, writing {args.out}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("totals: " + ", ".join(f"{n} {k}" for k, n in sorted(totals.items())), file=sys.stderr)


if __name__ == "__main__":
    main()
