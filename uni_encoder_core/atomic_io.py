"""Crash-safe writes: a half-written file or directory never appears under its final name.

:func:`atomic_writer` writes one file, :func:`atomic_directory` builds a whole output directory (a data set, a
report, a set of exported graphs); both write beside the target under a hidden temporary name and rename into
place only when the content is complete and flushed to disk. A crash or a kill at any moment leaves either the
old content or the new one under the final name, never a mix, a partial or a zero-byte file.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from uni_encoder_core.errors import OutputExistsError

PARTIAL = ".partial-"  # marks a staging directory: ``.<name>.partial-<pid>-<random>``


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success fsync it and rename it over ``path``.

    ``mode`` is ``"wb"`` or ``"w"``. The temporary file is created exclusively (``O_CREAT | O_EXCL``, mode 0666
    less the process umask, as for any new file). If the body raises, the temporary file is removed and ``path``
    is left untouched.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_writer mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    fh = open(tmp, mode.replace("w", "x"))  # "x": O_WRONLY | O_CREAT | O_EXCL, permissions 0o666 & ~umask
    try:
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def check_output_directory(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """``path`` as a directory that a new run may replace: missing, empty, or non-empty with ``overwrite``.

    Raises :class:`~uni_encoder_core.errors.OutputExistsError` naming the path when it is a file, or a
    non-empty directory and ``overwrite`` is false (two runs must never mix in one directory).
    """
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))  # replace the directory the link points to, keep the link
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"{path}: exists and is not a directory; choose a directory path for the output")
    if not overwrite and path.is_dir() and any(path.iterdir()):
        raise OutputExistsError(
            f"{path}: output directory is not empty; choose a new or empty directory, or replace it with --overwrite"
        )
    return path


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, overwrite: bool = False, create: bool = True) -> Iterator[Path]:
    """Build a directory in a staging area beside ``path`` and move it to ``path`` only when the body succeeds.

    Yields ``<parent>/.<name>.partial-<pid>-<random>/<name>``: the directory to write into (created unless
    ``create`` is false, for writers that insist on creating it themselves, e.g. rosbag2's); it already has the
    final base name, for formats that embed it. On success every file in it is fsynced and it replaces ``path``
    in one atomic exchange (``renameat2(RENAME_EXCHANGE)`` on Linux; elsewhere two renames, with the old content
    safe under the staging name in between), then the old content is deleted. If the body raises, the staging
    area is removed and ``path`` is untouched; if the process is killed, ``path`` is untouched and the staging
    area stays behind, hidden, until the next ``atomic_directory`` for the same ``path`` removes it (its pid is
    no longer alive).

    Refuses, before the body runs, a ``path`` that is a file or a non-empty directory unless ``overwrite``
    (raises :class:`~uni_encoder_core.errors.OutputExistsError`); an empty directory is replaced freely.
    """
    path = check_output_directory(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_staging(path)
    staging = path.parent / f".{path.name}{PARTIAL}{os.getpid()}-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        built = staging / path.name
        if create:
            built.mkdir()
        yield built
        if not built.is_dir():
            raise FileNotFoundError(f"{built}: the output directory was never created")
        check_output_directory(path, overwrite)  # nothing appeared meanwhile that we would clobber
        _fsync_tree(built)
        _swap_into_place(built, path)
        _fsync_dir(path.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # the old content (after a swap) or the unfinished one


def _swap_into_place(built: Path, path: Path) -> None:
    """Put ``built`` at ``path``; an existing ``path`` ends up at ``built`` (to be deleted by the caller)."""
    if not path.exists():
        os.rename(built, path)
        return
    if _exchange(built, path):
        return
    os.rename(path, built.with_name(built.name + ".old"))  # no atomic exchange here: two renames
    os.rename(built, path)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths with Linux ``renameat2(RENAME_EXCHANGE)``; False where unsupported."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False  # file system or kernel without RENAME_EXCHANGE
    raise OSError(err, os.strerror(err), str(b))


def _remove_dead_staging(path: Path) -> None:
    """Delete staging areas of ``path`` left by killed processes (their pid is no longer running)."""
    prefix = f".{path.name}{PARTIAL}"
    for old in path.parent.iterdir():
        pid = old.name[len(prefix):].split("-")[0]
        if old.name.startswith(prefix) and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _fsync_tree(root: Path) -> None:
    """fsync every regular file and directory under ``root`` (content durable before the rename)."""
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            file = os.path.join(dirpath, name)
            if os.path.isfile(file) and not os.path.islink(file):
                fd = os.open(file, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        _fsync_dir(Path(dirpath))


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
