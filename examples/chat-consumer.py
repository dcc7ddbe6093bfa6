#!/usr/bin/env python3
"""chat-consumer: post failed Qase runs from a runbridge stream to a chat.

An example consumer of the Redis streams runbridge appends to.  It reads a
stream as a member of a consumer group and, for every run.completed or
run.aborted event with failed > 0, posts one readable message to a chat
"incoming webhook" (Slack, Mattermost, Rocket.Chat, Google Chat and others
accept a JSON body {"text": "..."}):

    DEMO run #42 "Nightly" completed: 3 failed, 10 passed, 1 blocked of 14 in 31s
    https://app.qase.io/run/DEMO/dashboard/42

Python 3 standard library only; Redis is spoken to in RESP over a socket.

Usage:

    CHAT_WEBHOOK_URL=https://hooks.slack.com/services/... \\
        examples/chat-consumer.py --stream runbridge:DEMO --group chat --consumer bot1

Options (and the environment variables they default from):

    --redis-url URL   REDIS_URL, default redis://127.0.0.1:6379/0
                      (redis://[:password@]host[:port][/db], as runbridge's redis.url)
    --stream NAME     RB_STREAM, default runbridge:failures (what the example
                      rule rules/20-failures.yaml appends to)
    --group NAME      RB_GROUP, default chat (created at the end of the
                      stream if missing)
    --consumer NAME   RB_CONSUMER, default this host's name; keep it stable
                      across restarts so that it finds its own unfinished entries
    CHAT_WEBHOOK_URL  where to post (required)
    QASE_URL          default https://app.qase.io, for the link to the run

Delivery guarantees:

  - An entry is acknowledged (XACK) only after the chat answered 2xx, so a
    crash or a chat outage never loses a message; it can repeat one (the
    chat answered but the XACK did not happen).
  - Events that need no message (other types, no failures) are acknowledged
    at once.
  - At start, the consumer first retries its own entries that were never
    acknowledged.
  - Every 30 s it claims, with XAUTOCLAIM, entries idle for more than 60 s:
    those of consumers that died, and its own whose post failed.  A post that
    keeps failing is retried about every minute until it succeeds; to drop
    one, XACK it by hand:  redis-cli XACK STREAM GROUP ENTRY-ID
  - Stop it with SIGTERM or Ctrl-C.

Run several copies with different --consumer names to share the work.
"""
import argparse
import json
import os
import signal
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

BLOCK_MS = 5000           # one XREADGROUP waits at most this long
CLAIM_EVERY_S = 30        # how often to look for stuck entries
CLAIM_MIN_IDLE_MS = 60000 # an entry idle this long is claimed
BATCH = 50
NOTIFY_TYPES = ("run.completed", "run.aborted")


def log(*parts):
    print(time.strftime("%Y-%m-%dT%H:%M:%S"), *parts, file=sys.stderr, flush=True)


# ---- Redis: a minimal RESP client on one connection -------------------------

class RedisError(Exception):
    """An error reply (-ERR ...): the command failed, the connection is fine."""


class Redis:
    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        if u.scheme != "redis" or not u.hostname:
            raise SystemExit("bad redis url %r: expected redis://[:password@]host[:port][/db]" % url)
        self.host, self.port = u.hostname, u.port or 6379
        self.password = urllib.parse.unquote(u.password) if u.password else None
        self.db = int(u.path.lstrip("/") or 0)
        self.sock = self.reader = None

    def connect(self):
        self.close()
        self.sock = socket.create_connection((self.host, self.port), timeout=5)
        # Longer than a BLOCK: only a stalled server trips it.
        self.sock.settimeout(BLOCK_MS / 1000 + 10)
        self.reader = self.sock.makefile("rb")
        if self.password:
            self.cmd("AUTH", self.password)
        if self.db:
            self.cmd("SELECT", self.db)

    def close(self):
        for f in (self.reader, self.sock):
            if f:
                try:
                    f.close()
                except OSError:
                    pass
        self.sock = self.reader = None

    def cmd(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        return self._reply()

    def _reply(self):
        line = self.reader.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.reader.read(n + 2)
            if len(data) != n + 2:
                raise ConnectionError("redis closed the connection")
            return data[:-2].decode(errors="replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise ConnectionError("bad RESP reply %r" % line[:40])


def entries_of(reply):
    """[(id, {field: value} or None)] from an XREADGROUP or XAUTOCLAIM list."""
    out = []
    for e in reply or []:
        eid, fv = e[0], e[1]
        out.append((eid, dict(zip(fv[::2], fv[1::2])) if fv is not None else None))
    return out


# ---- the message ------------------------------------------------------------

def duration(ms):
    if not isinstance(ms, (int, float)) or ms < 0:
        return None
    s = int(round(ms / 1000))
    h, m, s = s // 3600, s // 60 % 60, s % 60
    return "%dh %dm" % (h, m) if h else "%dm %ds" % (m, s) if m else "%ds" % s


def message(ev, qase_url):
    """The chat text for an event, or None when it needs no message."""
    run = ev.get("run") or {}
    counts = run.get("counts") or {}
    failed = counts.get("failed")
    if ev.get("type") not in NOTIFY_TYPES or not isinstance(failed, int) or failed <= 0:
        return None
    project, run_id = ev.get("project") or "?", ev.get("run_id")
    verb = "aborted" if ev["type"] == "run.aborted" else "completed"
    title = run.get("title")
    parts = ["%d failed" % failed]
    parts += ["%d %s" % (counts[k], k) for k in ("passed", "blocked", "skipped", "untested")
              if isinstance(counts.get(k), int) and counts[k] > 0]
    text = "%s run #%s%s %s: %s" % (project, run_id, ' "%s"' % title if title else "",
                                    verb, ", ".join(parts))
    if isinstance(counts.get("total"), int):
        text += " of %d" % counts["total"]
    took = duration(run.get("duration_ms"))
    if took:
        text += " in " + took
    if run.get("environment"):
        text += " (%s)" % run["environment"]
    if run_id is not None:
        text += "\n%s/run/%s/dashboard/%s" % (qase_url.rstrip("/"),
                                              urllib.parse.quote(str(project)), run_id)
    return text


def post(url, text):
    """True when the chat answered 2xx."""
    body = json.dumps({"text": text}).encode()
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return 200 <= r.status < 300
    except urllib.error.HTTPError as e:
        log("chat answered", e.code, e.read(200).decode(errors="replace"))
    except (urllib.error.URLError, OSError) as e:
        log("chat unreachable:", e)
    return False


# ---- the consumer -------------------------------------------------------------

class Consumer:
    def __init__(self, args):
        self.a = args
        self.r = Redis(args.redis_url)
        self.next_claim = 0.0

    def setup(self):
        self.r.connect()
        try:
            self.r.cmd("XGROUP", "CREATE", self.a.stream, self.a.group, "$", "MKSTREAM")
        except RedisError as e:
            if not str(e).startswith("BUSYGROUP"):
                raise
        # Our own entries from before a crash or a failed post, first.
        cursor = "0"
        while True:
            got = self.r.cmd("XREADGROUP", "GROUP", self.a.group, self.a.consumer,
                             "COUNT", BATCH, "STREAMS", self.a.stream, cursor)
            entries = entries_of(got[0][1]) if got else []
            if not entries:
                break
            for eid, fields in entries:
                self.handle(eid, fields)
            cursor = entries[-1][0]

    def handle(self, eid, fields):
        """Posts if needed; acknowledges unless the post failed."""
        if fields is None:              # trimmed from the stream since
            self.ack(eid)
            return
        try:
            ev = json.loads(fields.get("event") or "")
        except ValueError:
            log("entry", eid, "has no JSON event; acknowledged without a message")
            self.ack(eid)
            return
        text = message(ev, self.a.qase_url) if isinstance(ev, dict) else None
        if text is None:
            self.ack(eid)
        elif post(self.a.webhook_url, text):
            log("posted", eid, ev.get("type"), ev.get("project"), ev.get("run_id"))
            self.ack(eid)
        else:
            log("post failed for", eid, "- it stays pending and is retried later")

    def ack(self, eid):
        self.r.cmd("XACK", self.a.stream, self.a.group, eid)

    def claim(self):
        """Takes over entries idle past CLAIM_MIN_IDLE_MS (dead consumers, failed posts)."""
        cursor = "0-0"
        while True:
            got = self.r.cmd("XAUTOCLAIM", self.a.stream, self.a.group, self.a.consumer,
                             CLAIM_MIN_IDLE_MS, cursor, "COUNT", BATCH)
            cursor, entries = got[0], entries_of(got[1])
            for eid, fields in entries:
                self.handle(eid, fields)
            if cursor == "0-0":
                return

    def step(self):
        if time.monotonic() >= self.next_claim:
            self.claim()
            self.next_claim = time.monotonic() + CLAIM_EVERY_S
        got = self.r.cmd("XREADGROUP", "GROUP", self.a.group, self.a.consumer,
                         "COUNT", BATCH, "BLOCK", BLOCK_MS, "STREAMS", self.a.stream, ">")
        for eid, fields in entries_of(got[0][1]) if got else []:
            self.handle(eid, fields)

    def run(self):
        backoff = 0.5
        while True:
            try:
                self.setup()
                log("reading", self.a.stream, "as", self.a.consumer, "of group", self.a.group)
                backoff = 0.5
                while True:
                    self.step()
            except OSError as e:   # ConnectionError and timeouts too
                log("redis %s:%d: %s; retrying in %.1fs" % (self.r.host, self.r.port, e, backoff))
            except RedisError as e:
                if "NOGROUP" not in str(e):   # the group was deleted: set it up again
                    raise SystemExit("redis: %s" % e)
                log("redis:", e)
            self.r.close()
            time.sleep(backoff)
            backoff = min(backoff * 2, 30)


def parse_args(argv):
    env = os.environ.get
    p = argparse.ArgumentParser(description="Post failed Qase runs from a runbridge stream to a chat.")
    p.add_argument("--redis-url", default=env("REDIS_URL", "redis://127.0.0.1:6379/0"))
    p.add_argument("--stream", default=env("RB_STREAM", "runbridge:failures"))
    p.add_argument("--group", default=env("RB_GROUP", "chat"))
    p.add_argument("--consumer", default=env("RB_CONSUMER", socket.gethostname()))
    a = p.parse_args(argv)
    a.webhook_url = env("CHAT_WEBHOOK_URL")
    a.qase_url = env("QASE_URL", "https://app.qase.io")
    if not a.webhook_url:
        p.error("set CHAT_WEBHOOK_URL to the chat's incoming-webhook URL")
    return a


def main(argv):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        Consumer(args).run()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
