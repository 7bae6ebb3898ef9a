"""Files written whole or not at all: a kill at any moment leaves the old file or the new one, never a part.

Every file gentwin writes for a user to keep (checkpoints, ``metrics.json``, samples, ``evaluation.json``,
exports) is first written to a temporary file in the target's own folder, ``.<name>.tmp-<pid>``,
flushed to the disk (``fsync``), then renamed onto the target, and the folder is synced so the rename
itself survives a crash. The same folder matters: a temporary file in ``$TMPDIR`` is *copied* over the
target when the two are on different filesystems (``shutil.move``), and a kill during that copy leaves a
truncated target. A kill while the temporary file is written leaves only that file;
``remove_stale`` removes such leftovers when a run starts in the folder again.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

#: The names of the temporary files (``.<target name>.tmp-<pid>``); ``remove_stale`` removes only these.
TEMP = re.compile(r"^\..+\.tmp-(\d+)$")


def temp_for(path: str | Path) -> Path:
    """The temporary file a write of ``path`` by this process goes through: beside it, hidden."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _fsync(path: Path, directory: bool = False) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    except OSError:
        if directory:  # some systems cannot open a folder; the rename is then as durable as they make it
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


def _publish(tmp: Path, path: Path, new: bool) -> None:
    """Renames ``tmp`` onto ``path`` (or, with ``new``, links it there only if ``path`` does not exist)."""
    if not new:
        os.replace(tmp, path)
    else:
        try:
            os.link(tmp, path)  # atomic and never replaces: FileExistsError if the target appeared
        except FileExistsError:
            raise
        except OSError as e:  # a filesystem without hard links: check, then rename
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
            if path.exists():
                raise FileExistsError(errno.EEXIST, "exists", str(path)) from None
            os.replace(tmp, path)
    _fsync(path.parent, directory=True)


@contextlib.contextmanager
def temp_beside(path: str | Path, new: bool = False) -> Iterator[Path]:
    """Yields the temporary path for a writer that takes a path (``savefig``, TorchScript's ``save``);
    when the block ends normally the file is synced and moved onto ``path``; otherwise it is removed.

    Args:
        new: never replace ``path``: raise ``FileExistsError`` if it exists by then.
    """
    path = Path(path)
    tmp = temp_for(path)
    tmp.unlink(missing_ok=True)  # a leftover of a killed process that had this pid
    try:
        yield tmp
        _fsync(tmp)
        _publish(tmp, path, new)
    finally:
        tmp.unlink(missing_ok=True)  # a failed write, or the temporary name of a linked file


@contextlib.contextmanager
def replacing(path: str | Path, new: bool = False) -> Iterator:
    """Yields a binary file whose content becomes ``path`` once the block ends normally (``temp_beside``)."""
    with temp_beside(path, new) as tmp:
        with open(tmp, "xb") as f:
            yield f
            f.flush()


def write_bytes(path: str | Path, data: bytes, new: bool = False) -> None:
    """``Path.write_bytes`` through a temporary file beside ``path`` (``replacing``)."""
    with replacing(path, new) as f:
        f.write(data)


def write_text(path: str | Path, text: str, new: bool = False) -> None:
    """``Path.write_text`` (UTF-8) through a temporary file beside ``path`` (``replacing``)."""
    write_bytes(path, text.encode(), new)


def write_with(path: str | Path, write: Callable[[Path], object], new: bool = False):
    """``write(temporary path)`` then the move onto ``path``; returns what ``write`` returned."""
    with temp_beside(path, new) as tmp:
        return write(tmp)


def alive(pid: int) -> bool:
    """Whether process ``pid`` of this host still runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale(folder: str | Path) -> list[Path]:
    """Removes the temporary files killed writes left in ``folder`` and below: files named as ``temp_for``
    names them whose process is gone (or is this one: call it before this process writes there).
    Returns the removed paths."""
    removed = []
    for path in Path(folder).rglob(".*.tmp-*"):
        m = TEMP.match(path.name)
        if not m or not path.is_file() or path.is_symlink():
            continue
        pid = int(m.group(1))
        if pid != os.getpid() and alive(pid):
            continue  # a write in progress in another process
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed
