"""The one writer (hades.fileio): what an output path may name, the short temporary name,
NAME_MAX, the up-front check, and the cross-process output lock.

No test writes to the machine's own /dev/null or /dev/stdout (the writer before these
fixes would have replaced them when run as root): devices are made with mknod in the test
folder, and descriptor paths are tried in a child process.
"""
from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hades.errors import OutputError
from hades.fileio import atomic_write, check_output_path, is_stream, lock_path, output_lock

REPO = Path(__file__).resolve().parents[1]
PAYLOAD = b"hades\n" * 100


def _write_bytes(data=PAYLOAD):
    return lambda tmp: Path(tmp).write_bytes(data)


def _device(tmp_path, name, major, minor) -> Path:
    path = tmp_path / name
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(major, minor))
    except (PermissionError, OSError) as e:
        pytest.skip(f"cannot make a character device here ({e})")
    return path


def _fifo_with_reader(tmp_path):
    path = tmp_path / "pipe"
    os.mkfifo(path)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)   # a reader is present; the content waits in the pipe
    return path, reader


def _read_all(fd) -> bytes:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


# ---- character devices and FIFOs are written into, never renamed over ---------------------------

def test_character_device_is_written_into_not_replaced(tmp_path):
    null = _device(tmp_path, "null", 1, 3)
    assert atomic_write(null, _write_bytes()) == null
    assert stat.S_ISCHR(os.stat(null).st_mode)
    assert os.listdir(tmp_path) == ["null"]     # no temporary file left beside it


def test_full_device_is_refused_with_one_line(tmp_path):
    full = _device(tmp_path, "full", 1, 7)      # like /dev/full: every write fails with ENOSPC
    with pytest.raises(OutputError, match="No space left on device"):
        atomic_write(full, _write_bytes())
    assert stat.S_ISCHR(os.stat(full).st_mode)


def test_fifo_with_a_reader_receives_the_content(tmp_path):
    fifo, reader = _fifo_with_reader(tmp_path)
    try:
        assert is_stream(fifo)
        atomic_write(fifo, _write_bytes())
        assert stat.S_ISFIFO(os.stat(fifo).st_mode)
        assert _read_all(reader) == PAYLOAD
    finally:
        os.close(reader)


def test_fifo_without_a_reader_is_refused_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="no process is reading the FIFO"):
        atomic_write(fifo, _write_bytes())
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_descriptor_paths_write_through_the_descriptor(tmp_path):
    """-o /proc/self/fd/1 (what /dev/stdout points to) in a child whose stdout is a pipe."""
    proc = subprocess.run([sys.executable, "-m", "hades.cli", "trace", "--synthetic", "--vocab", "40",
                           "--rounds", "2", "-o", "/proc/self/fd/1"], cwd=REPO, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(b"PK\x03\x04")       # the .npz, then the summary line
    assert b"-> /proc/self/fd/1" in proc.stdout


# ---- symlinks and directories --------------------------------------------------------------------

def test_symlink_to_a_regular_file_replaces_the_target_and_keeps_the_link(tmp_path):
    real = tmp_path / "real.csv"
    real.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    atomic_write(link, _write_bytes(b"new\n"))
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_bytes() == b"new\n"
    assert lock_path(link) == lock_path(real)   # two names of one file share one lock


def test_directory_and_symlink_to_a_directory_are_refused(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "to-d").symlink_to(tmp_path / "d")
    for path in (tmp_path / "d", tmp_path / "to-d"):
        with pytest.raises(OutputError, match="it is a directory"):
            check_output_path(path)
        with pytest.raises(OutputError, match="it is a directory"):
            atomic_write(path, _write_bytes())
    assert (tmp_path / "to-d").is_symlink()


def test_socket_is_refused(tmp_path):
    path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
    with pytest.raises(OutputError, match="it is a socket"):
        check_output_path(path)


# ---- names: a short temporary name, NAME_MAX checked first ---------------------------------------

def test_254_character_name_is_written_with_a_short_temporary_name(tmp_path):
    path = tmp_path / ("x" * 250 + ".csv")
    seen = []

    def write(tmp):
        seen.append(Path(tmp).name)
        Path(tmp).write_bytes(PAYLOAD)
    atomic_write(path, write, suffix=".csv")
    assert path.read_bytes() == PAYLOAD
    assert len(seen[0]) < 32 and seen[0].startswith(".hades-") and seen[0].endswith(".tmp.csv")
    assert os.listdir(tmp_path) == [path.name]
    with output_lock(path) as lock:             # `.<name>.lock` would be too long: a hashed name
        assert lock.parent == tmp_path and len(lock.name) < 40
    assert os.listdir(tmp_path) == [path.name]


def test_name_longer_than_name_max_is_refused_before_writing(tmp_path):
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    for path in (tmp_path / ("x" * (limit + 1)), tmp_path / ("d" * (limit + 1)) / "x.csv"):
        with pytest.raises(OutputError, match=f"longer than the file system's limit of {limit}"):
            check_output_path(path)
        called = []
        with pytest.raises(OutputError, match="NAME_MAX"):
            atomic_write(path, lambda tmp: called.append(tmp))
        assert not called
    assert os.listdir(tmp_path) == []


# ---- the up-front check --------------------------------------------------------------------------

def test_check_accepts_new_paths_and_writes_nothing(tmp_path):
    assert check_output_path(tmp_path / "a" / "b" / "x.csv") == tmp_path / "a" / "b" / "x.csv"
    assert check_output_path(tmp_path / "new-dir", directory=True) == tmp_path / "new-dir"
    assert check_output_path(None) is None
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("make, message", [
    (lambda t: "/proc/hades/x.csv", "cannot create folder /proc/hades"),
    (lambda t: "/proc/x.csv", "cannot create files in /proc"),
    (lambda t: (t / "f").write_text("") or t / "f" / "sub" / "x.csv", "is not a directory"),
    (lambda t: "", "empty output path"),
])
def test_check_refuses_unusable_outputs(tmp_path, make, message):
    with pytest.raises(OutputError, match=message):
        check_output_path(make(tmp_path))


def test_check_of_an_output_directory(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(OutputError, match="it is not a directory"):
        check_output_path(tmp_path / "f", directory=True)
    with pytest.raises(OutputError, match="cannot create folder /proc/hades"):
        check_output_path("/proc/hades/plots", directory=True)
    check_output_path(tmp_path, directory=True)


# ---- the output lock -----------------------------------------------------------------------------

HOLD = """
import sys
from hades.fileio import output_lock
with output_lock(sys.argv[1]):
    print("locked", flush=True)
    sys.stdin.read()
"""


def test_output_lock_refuses_a_second_process_and_names_the_holder(tmp_path):
    out = tmp_path / "shared.csv"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], cwd=REPO, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputError) as exc:
            with output_lock(out):
                pass
        assert str(exc.value) == f"{out} is being written by another hades process (pid {holder.pid})"
    finally:
        holder.communicate("", timeout=60)
    with output_lock(out) as lock:              # released when the holder ended
        assert lock.name == ".shared.csv.lock"
    assert not lock.exists()                    # removed by its last holder


def test_output_lock_left_by_a_killed_process_does_not_block(tmp_path):
    out = tmp_path / "x.csv"
    lock = lock_path(out)
    lock.write_text("999999\n")                 # the file a SIGKILLed holder leaves; the kernel dropped its lock
    with output_lock(out):
        assert lock.read_text() == f"{os.getpid()}\n"


def test_streams_take_no_lock(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert lock_path(fifo) is None
    with output_lock(fifo) as lock:
        assert lock is None
