#!/usr/bin/env python3
"""sfs_raw.py: speak raw sfs frames to one server, for tests that try to
get in (test_sfs_auth.sh). One connection: an optional HELLO, then at most
one request; prints one JSON line with what came back and whether the
server closed the connection.

  sfs_raw.py PORT --cred munge|none|FILE [OP [FIELDS...]]

--cred munge: a fresh credential from `munge -n` (as whoever runs this);
FILE: the credential text in that file (a replay, a corrupted one...);
none: no HELLO at all. OP: ping | mkdir PATH MODE | rename FROM TO | setattr
HANDLE VALID MODE UID GID. Wire format: common/sfs_proto.h (version 3)."""
import json
import socket
import struct
import subprocess
import sys

MAGIC, VERSION, HDR = 0x31534653, 3, "<IHHIiII"
OPS = {"hello": 3, "ping": 1, "mkdir": 18, "rename": 26, "setattr": 27}


def sstr(s):
    b = s.encode()
    return struct.pack("<H", len(b)) + b


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def call(sock, op, body):
    sock.sendall(struct.pack(HDR, MAGIC, VERSION, op, 7, 0, len(body), 0) + body)
    head = recv_exact(sock, 24)
    if head is None:
        return {"status": None, "msg": "", "closed": True}
    _, _, rop, _, status, blen, dlen = struct.unpack(HDR, head)
    body = recv_exact(sock, blen + dlen) or b""
    msg = ""
    if status < 0 and len(body) >= 2:
        n = struct.unpack("<H", body[:2])[0]
        msg = body[2:2 + n].decode(errors="replace")
    return {"status": status, "msg": msg, "body": body.hex(), "closed": False}


def closed_after(sock):
    sock.settimeout(5)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, socket.timeout):
        return True  # a reset is a close; a timeout says the server kept it open
    finally:
        sock.settimeout(None)


def main():
    port, cred = int(sys.argv[1]), sys.argv[3]
    assert sys.argv[2] == "--cred"
    args = sys.argv[4:]
    out = {}
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    if cred != "none":
        text = (subprocess.run(["munge", "-n"], check=True, capture_output=True, text=True)
                .stdout.strip() if cred == "munge" else open(cred).read().strip())
        out["hello"] = call(sock, OPS["hello"], struct.pack("<B", 1) + sstr(text))
    if args and out.get("hello", {}).get("status", 0) == 0:
        op, f = args[0], args[1:]
        if op == "ping":
            body = b""
        elif op == "mkdir":
            body = sstr(f[0]) + struct.pack("<III", int(f[1], 8), 0, 0)
        elif op == "rename":
            body = sstr(f[0]) + sstr(f[1]) + struct.pack("<I", 0)
        elif op == "setattr":
            body = struct.pack("<QIIIIqq", int(f[0], 0), int(f[1], 0), int(f[2], 8),
                               int(f[3]), int(f[4]), 0, 0)
        else:
            sys.exit("sfs_raw.py: unknown op " + op)
        out["reply"] = call(sock, OPS[op], body)
    last = out.get("reply") or out.get("hello") or {}
    out["closed"] = bool(last.get("closed")) or (last.get("status") != 0 and closed_after(sock))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
