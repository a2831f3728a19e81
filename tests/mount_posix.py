#!/usr/bin/env python3
"""mount_posix.py MOUNTDIR: POSIX conformance of an sfs mount.

Each case prints one TAP line; the exit status is the number of failed
cases (0: all passed). Run as root (one case drops to uid 65534 to check
that the kernel enforces the owner and mode sfs stores). Used by
test_mount.sh; can be run by hand against any sfs mount.
"""
import errno
import fcntl
import os
import stat
import struct
import sys
import time

MNT = sys.argv[1]
BASE = os.path.join(MNT, "posix.%d" % os.getpid())
cases = 0
failed = 0


def p(*parts):
    return os.path.join(BASE, *parts)


def write(path, data, flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC):
    fd = os.open(path, flags, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def expect_errno(err, fn, *args):
    try:
        fn(*args)
    except OSError as e:
        assert e.errno == err, "%s%r: %s, expected %s" % (
            fn.__name__, args, errno.errorcode.get(e.errno), errno.errorcode[err])
        return
    raise AssertionError("%s%r succeeded, expected %s" % (fn.__name__, args, errno.errorcode[err]))


def no_hidden_left():
    """The last close removes a file unlinked while open; FUSE sends that
    close (release) after close(2) returns, so allow it a moment."""
    for _ in range(50):
        if not [n for n in os.listdir(BASE) if n.startswith(".sfs-unlinked")]:
            return True
        time.sleep(0.1)
    return False


def case(fn):
    global cases, failed
    cases += 1
    try:
        fn()
        print("ok %d - %s" % (cases, fn.__name__))
    except Exception as e:  # one failed case must not hide the others
        failed += 1
        print("not ok %d - %s: %s: %s" % (cases, fn.__name__, type(e).__name__, e))
    sys.stdout.flush()


def rename_over_an_open_file():
    write(p("old"), b"old contents")
    write(p("new"), b"new contents")
    fd = os.open(p("old"), os.O_RDONLY)
    os.rename(p("new"), p("old"))
    assert os.pread(fd, 100, 0) == b"old contents", "the open file changed"
    os.close(fd)
    assert read(p("old")) == b"new contents"
    assert not os.path.exists(p("new"))
    assert no_hidden_left(), "the replaced file was not removed at its last close"


def rename_across_directories_and_errnos():
    os.mkdir(p("d1"))
    os.mkdir(p("d2"))
    write(p("d1", "f"), b"x")
    ino = os.stat(p("d1", "f")).st_ino
    os.rename(p("d1", "f"), p("d2", "g"))
    assert os.stat(p("d2", "g")).st_ino == ino
    expect_errno(errno.ENOENT, os.stat, p("d1", "f"))
    os.mkdir(p("d1", "sub"))
    expect_errno(errno.EINVAL, os.rename, p("d1"), p("d1", "sub", "x"))
    expect_errno(errno.ENOTEMPTY, os.rename, p("d2"), p("d1"))
    expect_errno(errno.EISDIR, os.rename, p("d2", "g"), p("d1", "sub"))
    expect_errno(errno.ENOTDIR, os.rename, p("d1", "sub"), p("d2", "g"))
    os.rename(p("d1", "sub"), p("d2", "sub"))  # a directory across directories
    assert os.path.isdir(p("d2", "sub"))


def unlink_of_an_open_file():
    data = os.urandom(300000)
    write(p("u"), data)
    fd = os.open(p("u"), os.O_RDWR)
    os.unlink(p("u"))
    expect_errno(errno.ENOENT, os.stat, p("u"))
    assert os.pread(fd, len(data) + 10, 0) == data, "unlinked file unreadable through its fd"
    os.pwrite(fd, b"more", len(data))
    assert os.fstat(fd).st_size == len(data) + 4
    os.close(fd)
    assert "u" not in os.listdir(BASE)
    assert no_hidden_left(), "the unlinked file was not removed at its last close"


def append_from_two_processes():
    n, size = 200, 1000
    write(p("log"), b"")
    pids = []
    for tag in (b"a", b"b"):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                fd = os.open(p("log"), os.O_WRONLY | os.O_APPEND)
                code = 0
                for _ in range(n):
                    if os.write(fd, tag * size) != size:
                        code = 1
                os.close(fd)
            except Exception:
                code = 1
            finally:
                os._exit(code)
        pids.append(pid)
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        assert status == 0, "an appender failed"
    data = read(p("log"))
    assert len(data) == 2 * n * size, "size %d, expected %d" % (len(data), 2 * n * size)
    for r in range(2 * n):
        rec = data[r * size:(r + 1) * size]
        assert rec == rec[:1] * size, "record %d torn" % r
    assert data.count(b"a") == n * size


def truncate_grow_and_shrink():
    write(p("t"), b"0123456789")
    os.truncate(p("t"), 3 << 20)
    data = read(p("t"))
    assert len(data) == 3 << 20 and data[:10] == b"0123456789" and data[10:] == bytes(len(data) - 10)
    fd = os.open(p("t"), os.O_RDWR)
    os.ftruncate(fd, 4)
    assert os.fstat(fd).st_size == 4
    os.close(fd)
    assert read(p("t")) == b"0123"
    write(p("t"), b"xy", os.O_WRONLY | os.O_TRUNC)
    assert read(p("t")) == b"xy"


def big_write_and_read_are_exact():
    data = os.urandom(9 << 20)  # over several 1 MiB requests and strips
    fd = os.open(p("big"), os.O_RDWR | os.O_CREAT, 0o644)
    assert os.write(fd, data) == len(data)
    assert os.pread(fd, len(data), 0) == data
    assert os.pread(fd, 1000, (5 << 20) - 300) == data[(5 << 20) - 300:(5 << 20) + 700]
    os.close(fd)
    st = os.stat(p("big"))
    assert st.st_size == len(data) and st.st_blksize == 1 << 20


def readdir_lists_every_entry():
    os.mkdir(p("many"))
    names = set("f%04d" % i for i in range(400))
    for n in names:
        write(p("many", n), b"")
    assert set(os.listdir(p("many"))) == names
    # changed while listed: names that stay are seen exactly once
    seen = []
    with os.scandir(p("many")) as it:
        for i, e in enumerate(it):
            seen.append(e.name)
            if i == 10:
                for j in range(50):
                    write(p("many", "new%02d" % j), b"")
                os.unlink(p("many", "f0399"))
    stayed = names - {"f0399"}
    assert stayed <= set(seen), "names that stayed were skipped"
    assert len(seen) == len(set(seen)), "a name was listed twice"


def chmod_chown_and_permissions():
    write(p("perm"), b"secret")
    os.chmod(p("perm"), 0o640)
    os.chown(p("perm"), 1234, 5678)
    st = os.stat(p("perm"))
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_uid == 1234 and st.st_gid == 5678
    os.chown(p("perm"), 0, 0)
    os.chmod(BASE, 0o755)
    pid = os.fork()
    if pid == 0:  # nobody may read a 0640 root file or write in a 0755 root dir
        code = 3
        try:
            code = 0
            os.setgid(65534)
            os.setuid(65534)
            for fn, args in ((open, (p("perm"), "rb")), (os.mkdir, (p("nobody"),))):
                try:
                    fn(*args)
                    code = 1
                except PermissionError:
                    pass
        except Exception:
            code = 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert status == 0, "an unprivileged user got past mode bits (%d)" % status
    d = p("owned")
    os.mkdir(d)
    os.chown(d, 65534, 65534)
    pid = os.fork()
    if pid == 0:  # a file created by nobody belongs to nobody
        code = 1
        try:
            os.setgid(65534)
            os.setuid(65534)
            write(os.path.join(d, "mine"), b"")
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert status == 0, "nobody could not create a file in a directory it owns"
    st = os.stat(os.path.join(d, "mine"))
    assert (st.st_uid, st.st_gid) == (65534, 65534), "owner %d:%d" % (st.st_uid, st.st_gid)


def utimens_and_times():
    write(p("tm"), b"x")
    os.utime(p("tm"), ns=(1000000123, 2000000456))
    st = os.stat(p("tm"))
    assert st.st_atime_ns == 1000000123 and st.st_mtime_ns == 2000000456, \
        (st.st_atime_ns, st.st_mtime_ns)
    before = time.time_ns()
    time.sleep(0.01)
    write(p("tm"), b"yy", os.O_WRONLY)
    st = os.stat(p("tm"))
    assert st.st_mtime_ns >= before and st.st_ctime_ns >= before, "a write did not move mtime/ctime"
    os.utime(p("tm"))  # now
    assert os.stat(p("tm")).st_atime_ns >= before
    fd = os.open(p("tm"), os.O_WRONLY)  # tar and cp -p: write, set times, close
    os.write(fd, b"zzz")
    os.utime(fd, ns=(3000000000, 4000000000))
    os.close(fd)
    assert os.stat(p("tm")).st_mtime_ns == 4000000000, "close overwrote an explicit mtime"


def statfs_counts_inodes_and_space():
    sv = os.statvfs(MNT)
    assert sv.f_blocks > 0 and sv.f_bfree <= sv.f_blocks
    assert sv.f_files > sv.f_ffree, "no inode counted as used"
    assert sv.f_namemax == 255


def symlinks():
    write(p("target"), b"t")
    os.symlink("target", p("link"))
    assert os.readlink(p("link")) == "target"
    assert read(p("link")) == b"t"
    assert os.lstat(p("link")).st_size == len("target")
    assert stat.S_ISLNK(os.lstat(p("link")).st_mode)
    expect_errno(errno.EEXIST, os.symlink, "x", p("link"))
    os.unlink(p("link"))
    assert os.path.exists(p("target"))


def errnos():
    expect_errno(errno.ENOENT, os.open, p("nope"), os.O_RDONLY)
    write(p("e"), b"")
    expect_errno(errno.EEXIST, os.open, p("e"), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    os.mkdir(p("ed"))
    expect_errno(errno.EEXIST, os.mkdir, p("ed"))
    write(p("ed", "x"), b"")
    expect_errno(errno.ENOTEMPTY, os.rmdir, p("ed"))
    expect_errno(errno.EISDIR, os.unlink, p("ed"))
    expect_errno(errno.ENOTDIR, os.rmdir, p("e"))
    expect_errno(errno.ENOTDIR, os.open, p("e", "x"), os.O_RDONLY)
    expect_errno(errno.ENAMETOOLONG, os.open, p("n" * 256), os.O_WRONLY | os.O_CREAT)
    expect_errno(errno.EPERM, os.link, p("e"), p("hard"))
    expect_errno(errno.EPERM, os.mkfifo, p("fifo"))


def getlk(fd, start, length):
    """F_GETLK for a write lock: (type, start, len, pid) of the holder."""
    req = struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, start, length, 0)
    res = fcntl.fcntl(fd, fcntl.F_GETLK, req + bytes(32 - len(req)))
    t, _, st, ln, pid = struct.unpack("hhqqi", res[:28])
    return t, st, ln, pid


def holder(path, op, ready_w, hold_s):
    """Fork a process that takes a lock (op(fd)), says so, holds it hold_s
    seconds (or until killed) and exits, which releases it."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fd = os.open(path, os.O_RDWR)
            op(fd)
            os.write(ready_w, b"x")
            time.sleep(hold_s)
            code = 0
        finally:
            os._exit(code)
    return pid


def fcntl_locks_hold_across_processes():
    write(p("lk"), b"0123456789" * 20)
    r, w = os.pipe()
    pid = holder(p("lk"), lambda fd: fcntl.lockf(fd, fcntl.LOCK_EX, 100, 0), w, 1.5)
    os.read(r, 1)
    fd = os.open(p("lk"), os.O_RDWR)
    expect_errno(errno.EAGAIN, fcntl.lockf, fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 50)
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 50, 100)  # past the held range
    t, st, ln, hpid = getlk(fd, 0, 10)
    assert (t, st, ln, hpid) == (fcntl.F_WRLCK, 0, 100, pid), "F_GETLK: %r" % ((t, st, ln, hpid),)
    t0 = time.time()
    fcntl.lockf(fd, fcntl.LOCK_EX, 100, 0)  # F_SETLKW: waits for the holder's exit
    waited = time.time() - t0
    assert 0.5 < waited < 10, "F_SETLKW waited %.2f s" % waited
    os.waitpid(pid, 0)
    os.close(fd)  # drops this process's locks
    fd = os.open(p("lk"), os.O_RDWR)
    assert getlk(fd, 0, 0)[0] == fcntl.F_UNLCK, "a lock outlived its process's close"
    os.close(fd)


def a_killed_holder_releases_its_locks():
    write(p("kl"), b"x" * 100)
    r, w = os.pipe()
    pid = holder(p("kl"), lambda fd: fcntl.lockf(fd, fcntl.LOCK_EX), w, 60)
    os.read(r, 1)
    fd = os.open(p("kl"), os.O_RDWR)
    expect_errno(errno.EAGAIN, fcntl.lockf, fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    t0 = time.time()
    fcntl.lockf(fd, fcntl.LOCK_EX)  # the kernel closes the dead process's files
    assert time.time() - t0 < 10
    os.close(fd)


def ofd_locks_go_with_their_open_file():
    write(p("ofd"), b"x" * 10)
    req = struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 10, 0)
    req += bytes(32 - len(req))
    fd1, fd2 = os.open(p("ofd"), os.O_RDWR), os.open(p("ofd"), os.O_RDWR)
    fcntl.fcntl(fd1, fcntl.F_OFD_SETLK, req)
    expect_errno(errno.EAGAIN, fcntl.fcntl, fd2, fcntl.F_OFD_SETLK, req)
    os.close(fd1)  # its last close: FUSE releases it just after close(2)
    deadline = time.time() + 5
    while True:
        try:
            fcntl.fcntl(fd2, fcntl.F_OFD_SETLK, req)
            break
        except BlockingIOError:
            assert time.time() < deadline, "an OFD lock outlived its open file"
            time.sleep(0.05)
    os.close(fd2)


def flock_holds_per_open_file():
    write(p("fl"), b"")
    r, w = os.pipe()
    pid = holder(p("fl"), lambda fd: fcntl.flock(fd, fcntl.LOCK_EX), w, 1.0)
    os.read(r, 1)
    fd = os.open(p("fl"), os.O_RDWR)
    expect_errno(errno.EAGAIN, fcntl.flock, fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # fcntl and flock locks are apart
    fcntl.lockf(fd, fcntl.LOCK_UN)
    fcntl.flock(fd, fcntl.LOCK_SH)  # waits for the holder's exit
    os.waitpid(pid, 0)
    fd2 = os.open(p("fl"), os.O_RDWR)
    fcntl.flock(fd2, fcntl.LOCK_SH | fcntl.LOCK_NB)  # shared with shared
    expect_errno(errno.EAGAIN, fcntl.flock, fd2, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(fd)  # the last close of that open file drops its flock
    deadline = time.time() + 5
    while True:  # FUSE sends that release after close(2) returns
        try:
            fcntl.flock(fd2, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            assert time.time() < deadline, "flock outlived its open file"
            time.sleep(0.05)
    os.close(fd2)


def mmap_private_works_shared_is_refused():
    import mmap
    write(p("mm"), b"mapped")
    fd = os.open(p("mm"), os.O_RDWR)
    m = mmap.mmap(fd, 6, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    assert m[:6] == b"mapped"
    m.close()
    expect_errno(errno.ENODEV, mmap.mmap, fd, 6, mmap.MAP_SHARED)  # sfs-mount(8)
    os.close(fd)


def fsync_reaches_the_servers():
    fd = os.open(p("fs"), os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"durable")
    os.fsync(fd)
    os.fdatasync(fd)
    os.close(fd)


os.mkdir(BASE)
for fn in (rename_over_an_open_file, rename_across_directories_and_errnos,
           unlink_of_an_open_file, append_from_two_processes, truncate_grow_and_shrink,
           big_write_and_read_are_exact, readdir_lists_every_entry,
           chmod_chown_and_permissions, utimens_and_times, statfs_counts_inodes_and_space,
           symlinks, errnos, fcntl_locks_hold_across_processes, a_killed_holder_releases_its_locks,
           flock_holds_per_open_file, ofd_locks_go_with_their_open_file,
           mmap_private_works_shared_is_refused,
           fsync_reaches_the_servers):
    case(fn)
print("1..%d" % cases)
sys.exit(min(failed, 100))
