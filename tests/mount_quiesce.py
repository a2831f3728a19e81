#!/usr/bin/env python3
"""mount_quiesce.py SFS CONF MOUNTPOINT SOCKET: migagent's quiesce holds a
program writing through an sfs mount.

Plays migagent's local control point (the Unix socket libsfs registers
with, see common/agent_proto.h) for an `sfs mount -f` it starts: quiesce,
then a dd into the mount must block (not fail) for as long as the gate is
closed, and complete with every byte after resume. Unmounts before it
exits. Exit 0 on success, 1 with the reason on failure.
"""
import json
import os
import select
import socket
import subprocess
import sys
import time

SFS, CONF, MNT, SOCK = sys.argv[1:5]
HOLD_S = 2.0
MiB = 1 << 20


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


class Agent:
    def __init__(self):
        if os.path.exists(SOCK):
            os.unlink(SOCK)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(SOCK)
        self.listener.listen(4)
        self.conns = {}  # socket -> bytes buffered

    def poll(self, timeout):
        """Accept, read; returns the complete lines received, per socket."""
        ready, _, _ = select.select([self.listener] + list(self.conns), [], [], timeout)
        lines = []
        for s in ready:
            if s is self.listener:
                c, _ = self.listener.accept()
                self.conns[c] = b""
                continue
            data = s.recv(65536)
            if not data:  # the client went away (the mount's probe does)
                del self.conns[s]
                s.close()
                continue
            buf = self.conns[s] + data
            *done, rest = buf.split(b"\n")
            self.conns[s] = rest
            lines += [(s, json.loads(l)) for l in done if l]
        return lines

    def wait_for(self, conn, kind, msg_id, timeout):
        end = time.time() + timeout
        while time.time() < end:
            for s, m in self.poll(0.1):
                if s is conn and m.get("type") == kind and m.get("id") == msg_id:
                    return m
        fail("no %s %d from the mount within %.0f s" % (kind, msg_id, timeout))

    def send(self, conn, msg):
        conn.sendall((json.dumps(dict(v=1, **msg)) + "\n").encode())


def main():
    agent = Agent()
    env = dict(os.environ, SFS_AGENT_SOCKET=SOCK)
    mount = subprocess.Popen([SFS, "-c", CONF, "mount", MNT, "-f"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        run(agent, mount)
    finally:
        subprocess.call([SFS, "umount", MNT], stderr=subprocess.DEVNULL)
        try:
            mount.wait(timeout=30)  # sanitized and under load: seconds
        except subprocess.TimeoutExpired:
            mount.kill()
            fail("the mount process did not exit after umount")
        err = mount.stderr.read().decode()
        if mount.returncode != 0 or any(s in err for s in (
                "AddressSanitizer", "LeakSanitizer", "runtime error:")):
            fail("the mount process exited with %d:\n%s" % (mount.returncode, err))


def run(agent, mount):
    end = time.time() + 10
    while not os.path.ismount(MNT) and time.time() < end:
        agent.poll(0.1)
        if mount.poll() is not None:
            fail("sfs mount exited: " + mount.stderr.read().decode())
    if not os.path.ismount(MNT):
        fail("not mounted after 10 s")
    settle = time.time() + 1.0  # the probe's registration comes and goes
    while time.time() < settle:
        agent.poll(0.1)
    if len(agent.conns) != 1:
        fail("%d clients registered, expected the mount alone" % len(agent.conns))
    conn = next(iter(agent.conns))
    agent.send(conn, {"type": "quiesce", "id": 1})
    q = agent.wait_for(conn, "quiesced", 1, 10)
    if not q.get("ok"):
        fail("quiesce failed: %r" % q)
    target = os.path.join(MNT, "written-during-quiesce")
    dd = subprocess.Popen(["dd", "if=/dev/zero", "of=" + target, "bs=1M", "count=4",
                           "conv=fsync"], stderr=subprocess.PIPE)
    held_until = time.time() + HOLD_S
    while time.time() < held_until:
        agent.poll(0.1)
        if dd.poll() is not None:
            fail("dd finished while quiesced (status %d): %s" % (dd.returncode,
                                                                   dd.stderr.read().decode()))
    agent.send(conn, {"type": "resume", "id": 2})
    agent.wait_for(conn, "resumed", 2, 10)
    try:
        status = dd.wait(timeout=30)
    except subprocess.TimeoutExpired:
        dd.kill()
        fail("dd did not finish within 30 s of resume")
    if status != 0:
        fail("dd failed after resume: " + dd.stderr.read().decode())
    size = os.stat(target).st_size
    if size != 4 * MiB:
        fail("%d bytes written, expected %d" % (size, 4 * MiB))
    with open(target, "rb") as f:
        if f.read() != bytes(4 * MiB):
            fail("the data read back differs")
    print("dd blocked %.1f s under quiesce and wrote 4 MiB after resume" % HOLD_S)


main()
