#!/usr/bin/env python3
"""An example receiver of reply delivery (REPLY_WEBHOOK_URL), standard library only: it checks the Standard
Webhooks signature (or, from a sender without it, X-Hub-Signature-256) and its timestamp, drops repeats by
Idempotency-Key, and prints each reply.

    python3 scripts/reply_receiver.py [--port 9000] [--secret <one of REPLY_WEBHOOK_SECRET's secrets>] [--fail 2]

Then start the service with REPLY_WEBHOOK_URL=http://127.0.0.1:9000/replies (make run), or
http://host.docker.internal:9000/replies (docker compose). `--fail N` answers 503 to the first N POSTs, to watch
the retries. A real receiver keeps the seen keys in its database, not in memory, and in Python verifies with the
`standardwebhooks` package (Webhook(secret).verify(body, headers)), which does what signed() does here.
"""

import argparse
import base64
import hashlib
import hmac
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_SECONDS = 300


def signed(secret: str, body: bytes, headers) -> bool:
    """Standard Webhooks: one of the space-separated `v1,<base64>` signatures is the HMAC-SHA256 of
    "id.timestamp.body" by the key (whsec_<base64>, or a plain secret's own bytes), within 5 minutes of now. Without
    those headers, X-Hub-Signature-256 by the secret as written."""
    signatures = headers.get("webhook-signature")
    if signatures is None:
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, headers.get("X-Hub-Signature-256", ""))
    message_id, timestamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_")) if secret.startswith("whsec_") else secret.encode()
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(digest).decode()
    return any(hmac.compare_digest(expected, given) for given in signatures.split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--bind", default="0.0.0.0", help="0.0.0.0 so containers reach it through the host")
    parser.add_argument("--secret", default="", help="one of REPLY_WEBHOOK_SECRET's secrets; empty: no check")
    parser.add_argument("--fail", type=int, default=0, help="answer 503 to this many POSTs first")
    args = parser.parse_args()
    seen: set[str] = set()
    failures_left = [args.fail]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if args.secret and not signed(args.secret, body, self.headers):
                return self.answer(401, "bad signature")
            if failures_left[0] > 0:
                failures_left[0] -= 1
                return self.answer(503, "failing on purpose (--fail)")
            key = self.headers.get("Idempotency-Key", "")
            if key in seen:
                print(f"repeat of {key}: dropped", flush=True)
                return self.answer(200, "already had it")
            seen.add(key)
            reply = json.loads(body)["data"]
            attempt = self.headers.get("X-Delivery-Attempt")
            print(f"reply {reply['id']} to conversation {reply['conversation_id']} (attempt {attempt}):", flush=True)
            print(reply["content"], flush=True)
            return self.answer(200, "ok")

        def answer(self, status: int, text: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text.encode())

        def log_message(self, *args) -> None:
            pass

    print(f"listening on {args.bind}:{args.port}", flush=True)
    ThreadingHTTPServer((args.bind, args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
