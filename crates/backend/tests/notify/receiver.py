"""A notification receiver for the backend's tests.

POST /hook   a generic webhook: verified with the `standardwebhooks` package (the
             specification's published library) against the secret given on the command
             line; a delivery that fails verification is refused with 401 and counted.
POST /slack  a Slack incoming webhook stand-in: the JSON body is kept as sent.
GET  /_received   what arrived: {"verified": [...], "rejected": n, "slack": [...]}
POST /_control    {"failNext": n, "delayMs": ms}: answer the next n hooks with 503, and
                  hold every answer this long.

Usage: receiver.py PORT SECRET. Prints "ready" once it listens.
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

PORT = int(sys.argv[1])
HOOK = Webhook(sys.argv[2])
LOCK = threading.Lock()
STATE = {"verified": [], "rejected": 0, "slack": [], "fail_next": 0, "delay_ms": 0}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body=b""):
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path != "/_received":
            return self.answer(404)
        with LOCK:
            body = {k: STATE[k] for k in ("verified", "rejected", "slack")}
        return self.answer(200, json.dumps(body).encode())

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        if self.path == "/_control":
            control = json.loads(body)
            with LOCK:
                STATE["fail_next"] = control.get("failNext", 0)
                STATE["delay_ms"] = control.get("delayMs", 0)
            return self.answer(204)
        with LOCK:
            delay = STATE["delay_ms"]
        if delay:
            time.sleep(delay / 1000)
        if self.path == "/slack":
            with LOCK:
                STATE["slack"].append(json.loads(body))
            return self.answer(200, b"ok")
        if self.path != "/hook":
            return self.answer(404)
        try:
            payload = HOOK.verify(body, dict(self.headers))
        except WebhookVerificationError:
            with LOCK:
                STATE["rejected"] += 1
            return self.answer(401)
        with LOCK:
            if STATE["fail_next"] > 0:
                STATE["fail_next"] -= 1
                return self.answer(503)
            STATE["verified"].append({"id": self.headers["webhook-id"], "payload": payload})
        return self.answer(204)


server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
print("ready", flush=True)
server.serve_forever()
