"""An event sink for the Knative tests: logs every request it gets as one JSON line on stdout
(path, the CloudEvent's attributes and data, whether a bearer token came) and answers 202.
Runs with the standard library alone, in the node's python image (its ConfigMap mounts it)."""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        record = {
            "path": self.path,
            "bearer": (self.headers.get("Authorization") or "").startswith("Bearer "),
        }
        record.update({k.lower(): v for k, v in self.headers.items() if k.lower().startswith("ce-")})
        if (self.headers.get("Content-Type") or "").startswith("application/cloudevents+json"):
            envelope = json.loads(body)
            record.update({f"ce-{k}": v for k, v in envelope.items() if k != "data"})
            record["data"] = envelope.get("data")
        else:
            try:
                record["data"] = json.loads(body) if body else None
            except ValueError:
                record["data"] = body.decode("utf-8", "replace")
        print(json.dumps(record), flush=True)
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):  # readiness
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format, *args):
        pass


ThreadingHTTPServer(("", int(sys.argv[1]) if len(sys.argv) > 1 else 8080), Handler).serve_forever()
