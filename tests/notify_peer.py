#!/usr/bin/env python3
"""notify_peer.py: systemd's side of Type=notify and of the journal
stream, for tests, on a machine where systemd is not PID 1.

    notify_peer.py LOG CHECK -- PROGRAM ARGS...

Binds a datagram socket, starts PROGRAM with $NOTIFY_SOCKET naming it and
stderr to LOG with $JOURNAL_STREAM naming LOG's device:inode (as systemd
does for StandardError=journal), and waits for READY=1. Then CHECK (a
shell command) must succeed at once: the program serves when it says it
is ready. Then SIGTERM; STOPPING=1 must come and the program exit 0.
Every message must come from PROGRAM's own pid (NotifyAccess=main).
Bounded: 30 s for each wait. Prints what it saw; exit 0 or 1 with why.
"""
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile

WAIT_S = 30


def receive(sock, proc, want, seen):
    """Messages until one has the line want; False on timeout or exit."""
    sock.settimeout(0.2)
    for _ in range(WAIT_S * 5):
        try:
            data, anc, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(12))
        except socket.timeout:
            if proc.poll() is not None:
                return False
            continue
        pid = None
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", payload[:12])[0]
        text = data.decode(errors="replace")
        seen.append((pid, text))
        print(f"# from pid {pid}: {text!r}")
        if pid != proc.pid:
            print(f"not main pid {proc.pid}: {text!r} came from pid {pid}")
            sys.exit(1)
        if want in text.split("\n"):
            return True
    return False


def main():
    if len(sys.argv) < 5 or sys.argv[3] != "--":
        sys.exit(__doc__)
    log_path, check, argv = sys.argv[1], sys.argv[2], sys.argv[4:]
    tmp = tempfile.mkdtemp(prefix="notify_peer.")
    path = os.path.join(tmp, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    log = open(log_path, "ab")
    st = os.fstat(log.fileno())
    env = dict(os.environ, NOTIFY_SOCKET=path, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=log)
    seen = []
    try:
        if not receive(sock, proc, "READY=1", seen):
            print(f"no READY=1 from {argv[0]} (exit {proc.poll()})")
            return 1
        rc = subprocess.run(check, shell=True).returncode
        if rc != 0:
            print(f"READY=1 came but the check failed (exit {rc}): {check}")
            return 1
        print(f"# ready and serving: {check}")
        proc.send_signal(signal.SIGTERM)
        if not receive(sock, proc, "STOPPING=1", seen):
            print(f"no STOPPING=1 after SIGTERM (exit {proc.poll()})")
            return 1
        rc = proc.wait(timeout=WAIT_S)
        if rc != 0:
            print(f"exit {rc} after SIGTERM")
            return 1
        ready = sum(1 for _, t in seen if "READY=1" in t.split("\n"))
        if ready != 1:
            print(f"READY=1 {ready} times")
            return 1
        return 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()
        os.unlink(path)
        os.rmdir(tmp)


if __name__ == "__main__":
    sys.exit(main())
