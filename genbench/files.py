"""Writing files so that a reader never sees half of one: into a temp file beside the target, then a rename."""

from __future__ import annotations

import errno
import os
import resource
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from genbench.errors import GenbenchError


def write_via_temp(path: Path, write: Callable[[Path], object]) -> None:
    """``write(tmp)`` into a temp file unique to this call beside ``path``, then replace ``path`` with it: two writers
    at once never share a temp file, and a reader never sees half a file. A write cut short (a full disk, a file-size
    limit, a quota) leaves ``path`` as it was and raises one line naming the file."""
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        tmp.replace(path)
    except (OSError, RuntimeError) as exc:  # torch.save reports a short write as a RuntimeError
        cause = short_write_cause(exc, tmp)
        if cause is None:
            raise
        raise GenbenchError(f"could not write {path} ({cause}); it was left as it was — free space in "
                            f"{path.parent} or raise the file-size limit, then rerun") from None
    finally:
        tmp.unlink(missing_ok=True)


def short_write_cause(exc: BaseException, partial: Path) -> str | None:
    """Why a write into ``partial`` was cut short — a full disk, a quota, the file-size limit (RLIMIT_FSIZE) — or None
    for any other failure."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return exc.strerror
    size = partial.stat().st_size if partial.is_file() else 0
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY and size >= limit:
        return f"the file-size limit of {limit} bytes was reached"
    if shutil.disk_usage(partial.parent).free < 2**20:
        return "the disk is full"
    return None


def write_text(path: Path, text: str) -> None:
    """``path.write_text(text)`` through ``write_via_temp``."""
    write_via_temp(path, lambda tmp: tmp.write_text(text))


def check_writable_dir(path: Path, what: str) -> None:
    """Refuse, in one line and before any work, a folder genbench must write into (``what``: how the user names it)
    that is a file, or that neither it nor its nearest existing parent takes a new file (read-only, no permission, a
    full disk): a probe file is created there and removed."""
    path = Path(path)
    target = path
    while not target.exists():
        if target.parent == target:
            break
        target = target.parent
    if not target.is_dir():
        raise GenbenchError(f"{what} {path} cannot be a folder: {target} is a file (point it at a folder)")
    try:
        fd, name = tempfile.mkstemp(prefix=".genbench-probe-", dir=target)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise GenbenchError(f"{what} {path} cannot be written ({exc.strerror or exc} in {target}); give a writable folder "
                            f"before training") from None
