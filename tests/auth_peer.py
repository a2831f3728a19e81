#!/usr/bin/python3
# auth_peer.py: the clients test_auth.sh sends at migd to get in, over real
# ZeroMQ sockets (pyzmq), with or without CURVE keys (curve_keys.h files).
#
#   auth_peer.py request EP [--key K --server-key P] [--timeout MS] CMD [ARGS]
#       one request on a fresh REQ socket; prints migd's reply (JSON) and
#       exits 0, or prints "no reply" and exits 3 after --timeout (2000).
#   auth_peer.py hold EP --key K --server-key P --go FILE [--timeout MS] CMD [ARGS]
#       one REQ socket, one connection: CMD, print the reply; wait (at most
#       60 s) until FILE exists; CMD again on the same socket, print the reply.
#   auth_peer.py subscribe EP [--key K --server-key P] --seconds N
#       a SUB socket on migd's events for N seconds; prints the number of
#       events that came ("events N").
#   auth_peer.py relay PORT TARGET_PORT --out FILE --seconds N
#       a TCP relay 127.0.0.1:PORT -> 127.0.0.1:TARGET_PORT for N seconds;
#       every byte either way is appended to FILE.
#   auth_peer.py badkey
#       prints a valid Z85 key pair file that migd never saw (stdout).
import argparse
import json
import os
import select
import socket
import sys
import time

import zmq


def read_key(path):
    """name = value lines of a key file, quotes stripped."""
    out = {}
    for line in open(path):
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            out[name.strip()] = value.strip().strip('"')
    return out


def curve(sock, a):
    if not a.key:
        return
    keys = read_key(a.key)
    sock.curve_publickey = keys["public-key"].encode()
    sock.curve_secretkey = keys["secret-key"].encode()
    sock.curve_serverkey = read_key(a.server_key)["public-key"].encode()


def request_text(a):
    args = json.loads(a.args) if a.args else {}
    return json.dumps({"v": 1, "cmd": a.cmd, "args": args}).encode()


def ask(sock, text, timeout_ms):
    sock.send(text)
    if not sock.poll(timeout_ms):
        return None
    return json.loads(sock.recv())


def cmd_request(a):
    ctx = zmq.Context()
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    curve(s, a)
    s.connect(a.endpoint)
    reply = ask(s, request_text(a), a.timeout)
    if reply is None:
        print("no reply")
        return 3
    print(json.dumps(reply))
    return 0


def cmd_hold(a):
    ctx = zmq.Context()
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    curve(s, a)
    s.connect(a.endpoint)
    reply = ask(s, request_text(a), a.timeout)
    print(json.dumps(reply) if reply is not None else "no reply", flush=True)
    if reply is None:
        return 3
    deadline = time.time() + 60
    while not os.path.exists(a.go) and time.time() < deadline:
        time.sleep(0.05)
    reply = ask(s, request_text(a), a.timeout)
    print(json.dumps(reply) if reply is not None else "no reply", flush=True)
    return 0 if reply is not None else 3


def cmd_subscribe(a):
    ctx = zmq.Context()
    s = ctx.socket(zmq.SUB)
    s.setsockopt(zmq.LINGER, 0)
    curve(s, a)
    s.setsockopt(zmq.SUBSCRIBE, b"")
    s.connect(a.endpoint)
    n = 0
    end = time.time() + a.seconds
    while time.time() < end:
        if s.poll(100):
            s.recv_multipart()
            n += 1
    print("events %d" % n)
    return 0


def cmd_relay(a):
    lst = socket.socket()
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind(("127.0.0.1", a.port))
    lst.listen(16)
    out = open(a.out, "ab")
    pairs = {}  # fd -> peer socket
    socks = [lst]
    end = time.time() + a.seconds
    while time.time() < end:
        ready, _, _ = select.select(socks, [], [], 0.1)
        for r in ready:
            if r is lst:
                c, _ = lst.accept()
                t = socket.create_connection(("127.0.0.1", a.target))
                pairs[c] = t
                pairs[t] = c
                socks += [c, t]
                continue
            data = b""
            try:
                data = r.recv(65536)
            except OSError:
                pass
            other = pairs.get(r)
            if not data or other is None:
                for x in (r, other):
                    if x in socks:
                        socks.remove(x)
                        x.close()
                continue
            out.write(data)
            out.flush()
            other.sendall(data)
    return 0


def cmd_badkey(a):
    public, secret = zmq.curve_keypair()
    print('public-key = "%s"\nsecret-key = "%s"' % (public.decode(), secret.decode()))
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="what", required=True)
    for name in ("request", "hold", "subscribe"):
        p = sub.add_parser(name)
        p.add_argument("endpoint")
        p.add_argument("--key")
        p.add_argument("--server-key")
        p.add_argument("--timeout", type=int, default=2000)
        if name == "subscribe":
            p.add_argument("--seconds", type=float, required=True)
        else:
            p.add_argument("cmd")
            p.add_argument("args", nargs="?")
        if name == "hold":
            p.add_argument("--go", required=True)
    p = sub.add_parser("relay")
    p.add_argument("port", type=int)
    p.add_argument("target", type=int)
    p.add_argument("--out", required=True)
    p.add_argument("--seconds", type=float, required=True)
    sub.add_parser("badkey")
    a = ap.parse_args()
    return {"request": cmd_request, "hold": cmd_hold, "subscribe": cmd_subscribe,
            "relay": cmd_relay, "badkey": cmd_badkey}[a.what](a)


if __name__ == "__main__":
    sys.exit(main())
