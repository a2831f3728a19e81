#!/usr/bin/python3
# agent_peer.py: a stand-in migagent for migd's tests, speaking the migagent
# protocol of CONTRACTS.md ("migagent protocol") over a ZeroMQ DEALER, so
# that migd's side is tested on its own, whatever state the real agent is
# in. One process is the agent of one guest.
#
#   agent_peer.py --migd tcp://127.0.0.1:7710 --guest g1 [--log FILE]
#       [--quiesce ok|late|error|missed|never] [--late-ms N]
#       [--rate BPS] [--rate-file FILE] [--no-hello] [--malformed]
#       [--drained-requests N] [--drained-bytes N]
#       [--key NAME.key --server-key migd.pub]
#
# quiesce: ok answers at once with the drained figures; late answers ok
# after --late-ms; error answers ok:false; missed answers ok:false with
# missed_deadline after the deadline, as the real agent does; never does
# not answer. --rate is the write rate reported every second (activity is
# also the heartbeat); --rate-file, when it exists, holds the rate instead,
# read every report, so a test can change it. --malformed first sends a
# set of bad messages, one at a time, and logs migd's answer to each.
# --log gets one JSON line per message from migd: {"t": seconds, "msg": ...}.
# Runs until killed (SIGTERM exits at once).
import argparse
import json
import os
import signal
import sys
import time

import zmq

MALFORMED = [
    b"this is not json",
    b"[1, 2, 3]",
    b'{"type":"hello","guest":"x"}',                       # no "v"
    b'{"v":2,"type":"hello","guest":"x"}',                 # wrong version
    b'{"v":1}',                                            # no type
    b'{"v":1,"type":"frobnicate"}',                        # unknown type
    b'{"v":1,"type":"hello","guest":"bad name!"}',         # not a guest name
    b'{"v":1,"type":"activity","guest":"GUEST","write_bps":-5}',
    b'{"v":1,"type":"activity","guest":"GUEST","write_bps":"fast"}',
    b'{"v":1,"type":"reply","id":"seven","ok":true}',
    b'{"v":1,"type":"hello","guest":"' + b"g" * 300 + b'"}',
    b"x" * (70 * 1024),                                    # over 64 KiB
]


def read_key(path):
    """name = value lines of a key file (curve_keys.h), quotes stripped."""
    out = {}
    for line in open(path):
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            out[name.strip()] = value.strip().strip('"')
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--migd", required=True)
    ap.add_argument("--guest", required=True)
    ap.add_argument("--log")
    ap.add_argument("--quiesce", default="ok",
                    choices=["ok", "late", "error", "missed", "never"])
    ap.add_argument("--late-ms", type=int, default=500)
    ap.add_argument("--rate", type=float, default=0)
    ap.add_argument("--rate-file")
    ap.add_argument("--no-hello", action="store_true")
    ap.add_argument("--malformed", action="store_true")
    ap.add_argument("--drained-requests", type=int, default=7)
    ap.add_argument("--drained-bytes", type=int, default=7 << 20)
    ap.add_argument("--key", help="CURVE key pair file (migctl keygen's NAME.key)")
    ap.add_argument("--server-key", help="migd.pub to pin (with --key)")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    log = open(a.log, "a", buffering=1) if a.log else None
    t0 = time.time()

    def note(obj):
        if log:
            log.write(json.dumps({"t": round(time.time() - t0, 3), "msg": obj}) + "\n")

    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    if a.key:
        keys = read_key(a.key)
        s.curve_publickey = keys["public-key"].encode()
        s.curve_secretkey = keys["secret-key"].encode()
        s.curve_serverkey = read_key(a.server_key)["public-key"].encode()
    s.connect(a.migd)

    def send(obj):
        obj["v"] = 1
        s.send(json.dumps(obj).encode())

    if a.malformed:
        for raw in MALFORMED:
            s.send(raw.replace(b"GUEST", a.guest.encode()))
            if s.poll(3000):
                try:
                    note({"answer_to": raw[:60].decode(errors="replace"),
                          "answer": json.loads(s.recv())})
                except ValueError:
                    note({"answer_to": raw[:60].decode(errors="replace"), "answer": None})
            else:
                note({"answer_to": raw[:60].decode(errors="replace"), "answer": None})
        s.send(b"x", zmq.SNDMORE)  # two frames
        s.send(b"y")
        if s.poll(3000):
            note({"answer_to": "two frames", "answer": json.loads(s.recv())})
        note({"malformed_done": True})

    if not a.no_hello:
        send({"type": "hello", "guest": a.guest, "hostname": a.guest,
              "version": "0.0-peer", "pid": os.getpid()})

    quiesced = False
    pending = []  # (due time, reply) for late and missed answers
    next_report = 0.0
    while True:
        now = time.time()
        if now >= next_report:
            rate = a.rate
            if a.rate_file and os.path.exists(a.rate_file):
                try:
                    rate = float(open(a.rate_file).read().strip() or 0)
                except ValueError:
                    pass
            send({"type": "activity", "guest": a.guest, "interval_ms": 1000,
                  "read_bps": 0, "write_bps": rate, "inflight": 2 if rate else 0,
                  "quiesced": quiesced,
                  "clients": [{"pid": 1, "comm": "writer", "read_bps": 0,
                               "write_bps": rate, "inflight": 2 if rate else 0}]})
            next_report = now + 1.0
        for item in [p for p in pending if p[0] <= now]:
            pending.remove(item)
            send(item[1])
        wait = min([next_report] + [p[0] for p in pending]) - time.time()
        if not s.poll(max(1, int(wait * 1000))):
            continue
        try:
            msg = json.loads(s.recv())
        except ValueError:
            continue
        note(msg)
        kind, rid = msg.get("type"), msg.get("id")
        drained = {"clients": 1, "drained_requests": a.drained_requests,
                   "drained_bytes": a.drained_bytes, "time_ms": 1.5}
        if kind == "quiesce":
            deadline = msg.get("deadline_ms", 2000)
            if a.quiesce == "ok":
                quiesced = True
                send({"type": "reply", "id": rid, "ok": True, "result": drained})
            elif a.quiesce == "late":
                quiesced = True
                pending.append((time.time() + a.late_ms / 1000.0,
                                {"type": "reply", "id": rid, "ok": True, "result": drained}))
            elif a.quiesce == "error":
                send({"type": "reply", "id": rid, "ok": False,
                      "error": "client 1 did not answer", "result": {}})
            elif a.quiesce == "missed":
                r = dict(drained, missed_deadline=True)
                pending.append((time.time() + deadline / 1000.0,
                                {"type": "reply", "id": rid, "ok": False, "result": r,
                                 "error": "deadline %d ms missed: 1 request in flight"
                                 % deadline}))
        elif kind == "resume":
            quiesced = False
            send({"type": "reply", "id": rid, "ok": True,
                  "result": {"clients": 1, "held_ms": 3.0}})
        elif kind == "ping":
            send({"type": "reply", "id": rid, "ok": True, "result": {}})


if __name__ == "__main__":
    main()
