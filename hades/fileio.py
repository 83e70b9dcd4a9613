"""Writing output files safely: the one writer every command and study uses."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hades.errors import OutputError


def atomic_write(path: str | os.PathLike, write_fn, suffix: str = "") -> Path:
    """Call write_fn(tmp_path) on a temporary file next to path, then rename it into place."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
    os.close(fd)
    os.chmod(tmp, 0o644)   # mkstemp makes 0600; outputs are ordinary shareable files
    try:
        write_fn(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
