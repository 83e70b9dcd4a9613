"""Writing output files safely: the one writer every command and study uses.

What an output path may name (docs/RELIABILITY.md, "Output paths"):

- a regular file, or a path that does not exist yet: written atomically, through a short
  temporary name in the same folder (`.hades-XXXXXXXX.tmp`) renamed into place; missing
  folders are created;
- a symlink to a regular file (or a dangling one): the file it points to is replaced
  atomically and the link stays a link;
- a character device or a FIFO (/dev/null, /dev/stdout, a terminal, a named pipe, a pipe
  from `>(...)`): never renamed over; the finished content is written into it in one go.
  A FIFO must have a reader by then, else the write is refused. Paths that name an open
  file descriptor of this process (/dev/stdout, /dev/fd/N, /proc/self/fd/N) are written
  through that descriptor, whatever it is open on;
- anything else is refused with one line (OutputError): a directory or a symlink to one,
  a socket, a block device, a name longer than the file system's NAME_MAX, a folder that
  cannot be created or written.

check_output_path runs these checks without writing anything, so a command can refuse an
unusable output before its work; output_lock keeps two processes from writing one shared
output at once.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import stat
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hades.errors import OutputError

TMP_PREFIX, TMP_SUFFIX = ".hades-", ".tmp"   # temporary names: short whatever the target's length


@dataclass(frozen=True)
class _Target:
    kind: str               # "file" (atomic replace) or "stream" (written into)
    path: Path              # where to write: the link target for a symlinked regular file
    fd: int | None = None   # a descriptor of this process that the path names (/dev/stdout)


# ---- resolving a path -------------------------------------------------------------------------

_FD_DIR = re.compile(r"/proc/(\d+)(?:/task/\d+)?/fd")


def _own_descriptor(path: str) -> int | None:
    """The descriptor number when path names one of this process's open descriptors
    (/dev/stdout, /dev/fd/N, /proc/self/fd/N), else None."""
    p = os.path.abspath(path)
    for _ in range(40):   # symlink hops
        m = _FD_DIR.fullmatch(os.path.realpath(os.path.dirname(p)))
        name = os.path.basename(p)
        if m and int(m.group(1)) == os.getpid() and name.isdigit():
            return int(name)
        if not os.path.islink(p):
            return None
        p = os.path.join(os.path.dirname(p), os.readlink(p))
    return None


def _kind_name(mode: int) -> str:
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISBLK(mode):
        return "a block device"
    return "not a regular file"


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _check_folder(folder: Path, shown: str, new_names: tuple[str, ...] = (), into: bool = False) -> None:
    """folder (created if missing) must be able to hold new files named new_names: the
    nearest existing ancestor is a writable directory, no name to create exceeds NAME_MAX."""
    what = f"cannot write into {shown}" if into else f"cannot write {shown}"
    folder = Path(os.path.abspath(folder))
    missing: list[str] = []
    anc = folder
    while True:
        try:
            st = os.stat(anc)
            break
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG) or anc == anc.parent:
                raise OutputError(f"{what}: {anc}: {e.strerror or e}") from None
            missing.append(anc.name)
            anc = anc.parent
    if not stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{what}: it is not a directory" if into and anc == folder
                          else f"{what}: {anc} is not a directory")
    limit = _name_max(anc)
    for name in (*reversed(missing), *new_names):
        n = len(os.fsencode(name))
        if n > limit:
            raise OutputError(f"{what}: a file name of {n} bytes, longer than the file system's limit "
                              f"of {limit} (NAME_MAX)")
    try:   # a real probe: permissions, read-only file systems, /proc, root's bypass of the mode bits
        fd, probe = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=TMP_SUFFIX, dir=anc)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        place = f"cannot create folder {anc / missing[-1]}" if missing else f"cannot create files in {anc}"
        raise OutputError(f"{what}: {place} ({e.strerror or e})") from None


def _resolve(path, probe: bool = True) -> _Target:
    """Where and how an output file at path is written; OutputError when it cannot be."""
    s = os.fspath(path)
    if s == "":
        raise OutputError("empty output path")
    fd = _own_descriptor(s)
    try:
        st = os.stat(s)
    except OSError as e:
        if fd is not None:
            raise OutputError(f"cannot write {s}: not an open file descriptor") from None
        if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG):
            st = None   # to be created: the folder checks below say whether it can be
        else:   # a symlink loop, a permission problem on the way
            raise OutputError(f"cannot write {s}: {e.strerror or e}") from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise OutputError(f"cannot write {s}: it is a directory")
        if fd is not None:
            return _Target("stream", Path(s), fd)
        if stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
            return _Target("stream", Path(s))
        if not stat.S_ISREG(st.st_mode):
            raise OutputError(f"cannot write {s}: it is {_kind_name(st.st_mode)}; expected a regular file, "
                              "a character device or a FIFO")
    # a symlink (even a dangling one): write the file it points to, keep the link
    target = Path(os.path.realpath(s)) if os.path.islink(s) else Path(s)
    if probe:
        _check_folder(target.parent, s, (target.name,))
    return _Target("file", target)


def check_output_path(path, *, directory: bool = False):
    """Refuse (OutputError, one line) an output that cannot be written, before any work.

    path: an output file (the rules in this module's docstring), or with directory=True a
    folder that files will be written into (existing or creatable, writable). None: nothing
    to check (an option that was not given). Writes nothing; returns path.
    """
    if path is None:
        return None
    if directory:
        s = os.fspath(path)
        if s == "":
            raise OutputError("empty output directory")
        _check_folder(Path(s), s, into=True)
    else:
        _resolve(path)
    return path


def is_stream(path) -> bool:
    """True when path names a character device, a FIFO or an open descriptor (written
    into, once, rather than replaced): a command that rewrites its output as it goes should
    write a stream only at the end."""
    try:
        return _resolve(path, probe=False).kind == "stream"
    except OutputError:
        return False


# ---- writing ------------------------------------------------------------------------------

def _write_into_stream(src: str, target: _Target, shown: str) -> None:
    if target.fd is not None:   # /dev/stdout and friends: the descriptor itself, in order with prints
        for f in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                f.flush()
        fd = os.dup(target.fd)
    else:
        try:   # O_NONBLOCK: a FIFO without a reader fails at once (ENXIO) instead of hanging
            fd = os.open(target.path, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            if e.errno == errno.ENXIO:
                raise OutputError(f"cannot write {shown}: no process is reading the FIFO "
                                  "(start the reader first)") from None
            raise OutputError(f"cannot write {shown}: {e.strerror or e}") from None
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    try:
        with open(src, "rb") as f:
            while chunk := f.read(1 << 20):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
    except OSError as e:
        raise OutputError(f"cannot write {shown}: {e.strerror or e}") from None
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write_fn, suffix: str = "") -> Path:
    """Call write_fn(tmp_path) on a temporary file, then put its content at path: renamed
    into place for a regular file (a reader never sees a partial file, a failure leaves the
    old file), written into a character device or FIFO. suffix ends the temporary name (for
    writers that pick a format from it)."""
    shown = os.fspath(path)
    target = _resolve(path)   # the same checks as check_output_path, again: things change
    if target.kind == "stream":
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=TMP_SUFFIX + suffix)
        os.close(fd)
        try:
            write_fn(tmp)
            _write_into_stream(tmp, target, shown)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return Path(path)
    dest = target.path
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=TMP_SUFFIX + suffix, dir=dest.parent)
    except OSError as e:
        raise OutputError(f"cannot write {shown}: {e.strerror or e}") from None
    os.close(fd)
    os.chmod(tmp, 0o644)   # mkstemp makes 0600; outputs are ordinary shareable files
    try:
        write_fn(tmp)
        if os.path.isdir(dest):   # appeared since the check: never rename into a directory's place
            raise OutputError(f"cannot write {shown}: it is a directory")
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(path)


# ---- one writer at a time ---------------------------------------------------------------------

def lock_path(path) -> Path | None:
    """The advisory lock file of an output: `.<name>.lock` beside the file (the link target
    for a symlink; a hashed name when that would exceed NAME_MAX); None for a stream."""
    target = _resolve(path, probe=False)
    if target.kind == "stream":
        return None
    name = f".{target.path.name}.lock"
    folder = target.path.parent
    if len(os.fsencode(name)) > (_name_max(folder) if folder.is_dir() else 255):
        name = f".hades-{hashlib.sha256(os.fsencode(target.path.name)).hexdigest()[:16]}.lock"
    return folder / name


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        text = os.pread(fd, 32, 0).decode().strip()
        if text.isdigit():
            return text
    return "unknown"


@contextlib.contextmanager
def output_lock(path):
    """Hold the output's lock for the body (fcntl.flock on lock_path(path), non-blocking).
    A second process asking for the same output is refused at once with OutputError
    "<path> is being written by another hades process (pid N)". The kernel drops the lock
    when its holder dies, so a killed run never blocks the next one. Streams need no lock."""
    lock = lock_path(path)
    if lock is None:
        yield None
        return
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot write {os.fspath(path)}: {e.strerror or e}") from None
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise OutputError(f"cannot lock {os.fspath(path)}: {e.strerror or e}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise OutputError(f"{os.fspath(path)} is being written by another hades process "
                              f"(pid {holder})") from None
        except OSError as e:
            os.close(fd)
            raise OutputError(f"cannot lock {os.fspath(path)}: {e.strerror or e}") from None
        # the previous holder removes the file before it lets go: make sure ours is still the one there
        try:
            now = os.stat(lock)
            mine = os.fstat(fd)
            if (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino):
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield lock
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)   # while still holding it (see the identity check above)
        os.close(fd)


@contextlib.contextmanager
def build_lock(folder, name: str):
    """Hold a blocking lock (fcntl.flock on folder/.<name>.build-lock) for the body: two
    processes that need the same cached build (a Verilator model, say; pytest -n runs tests in
    several workers) take turns, so the second finds the first's build instead of compiling it
    again into the same files. The lock file stays (removing it would race); the kernel drops
    the lock when its holder dies."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / f".{name}.build-lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
