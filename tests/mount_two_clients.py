#!/usr/bin/env python3
"""mount_two_clients.py SFS CONF MNT_A MNT_B: two sfs mounts of one file
system, standing for two guests.

Checks what only holds across clients: a write through one mount is read
through the other at once (direct_io), O_APPEND from both never overlaps,
an fcntl lock taken through A stops a process on B (F_GETLK names no pid
there, the holder being on another client), and when A's mount process is
killed with -9 its locks go with its connections, so B's waiting F_SETLKW
gets the lock. Unmounts both (the killed one too) before it exits.
Exit 0 on success, 1 with the reason.
"""
import errno
import fcntl
import os
import struct
import subprocess
import sys
import time

SFS, CONF, MNT_A, MNT_B = sys.argv[1:5]


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def mount(mnt):
    proc = subprocess.Popen([SFS, "-c", CONF, "mount", mnt, "-f"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if os.path.ismount(mnt):
            return proc
        time.sleep(0.1)
    fail("%s not mounted within 10 s" % mnt)


def unmount(mnt, proc):
    subprocess.call([SFS, "umount", mnt], stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def in_child(fn):
    """Run fn in a child process; returns (pid, read end of its ready pipe)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fn(w)
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    return pid, r


def checks(a, b):
    data = os.urandom(3 << 20)
    with open(os.path.join(MNT_A, "shared.bin"), "wb") as f:
        f.write(data)
    with open(os.path.join(MNT_B, "shared.bin"), "rb") as f:
        if f.read() != data:
            fail("B read other bytes than A wrote")

    log_a, log_b = os.path.join(MNT_A, "two.log"), os.path.join(MNT_B, "two.log")
    open(log_a, "wb").close()
    n, size = 100, 5000

    def appender(path, tag):
        def run(w):
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            for _ in range(n):
                os.write(fd, tag * size)
        return run
    pids = [in_child(appender(log_a, b"a"))[0], in_child(appender(log_b, b"b"))[0]]
    for pid in pids:
        if os.waitpid(pid, 0)[1] != 0:
            fail("an appender failed")
    got = open(log_b, "rb").read()
    if len(got) != 2 * n * size or any(
            got[i * size:(i + 1) * size] != got[i * size:i * size + 1] * size for i in range(2 * n)):
        fail("appends through two mounts overlapped (%d bytes)" % len(got))

    lk_a, lk_b = os.path.join(MNT_A, "locked"), os.path.join(MNT_B, "locked")
    open(lk_a, "wb").close()

    def hold(w):
        fd = os.open(lk_a, os.O_RDWR)
        fcntl.lockf(fd, fcntl.LOCK_EX, 100, 0)
        os.write(w, b"x")
        time.sleep(120)
    holder, ready = in_child(hold)
    os.read(ready, 1)
    fd = os.open(lk_b, os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 50)
        fail("B took a range A holds")
    except OSError as e:
        if e.errno != errno.EAGAIN:
            fail("B's conflicting lock: %s, expected EAGAIN" % errno.errorcode.get(e.errno))
    req = struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 10, 0)
    t, _, st, ln, pid = struct.unpack("hhqqi", fcntl.fcntl(fd, fcntl.F_GETLK,
                                                           req + bytes(32 - len(req)))[:28])
    if (t, st, ln, pid) != (fcntl.F_WRLCK, 0, 100, 0):
        fail("F_GETLK through B: %r, expected the write lock 0+100, pid 0" % ((t, st, ln, pid),))

    a.kill()  # A's mount process dies holding the lock for its program
    a.wait()
    t0 = time.time()
    fcntl.lockf(fd, fcntl.LOCK_EX, 100, 0)  # F_SETLKW
    waited = time.time() - t0
    if waited > 20:
        fail("the dead client's lock held for %.1f s" % waited)
    os.close(fd)
    os.kill(holder, 9)
    os.waitpid(holder, 0)
    print("two mounts: data coherent, appends atomic, locks across clients; "
          "a killed client's lock freed in %.2f s" % waited)


def main():
    a = mount(MNT_A)
    b = mount(MNT_B)
    try:
        checks(a, b)
    finally:
        unmount(MNT_B, b)
        unmount(MNT_A, a)  # the killed one too: a dead mount
        if os.path.ismount(MNT_A) or os.path.ismount(MNT_B):
            fail("a mount is left behind")


main()
