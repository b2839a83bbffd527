"""Atomic, durable file writes: the one place ofa writes a file a user keeps.

A file is written to a temporary name in its own directory, flushed to disk, then renamed onto its
final name, and the directory entry is flushed too: a kill or power loss leaves the old file or the
new one, never half of one. The file gets the user's ordinary permissions (0666 less the umask), not
mkstemp's 0600.

Temporary names carry the writer's pid (".NAME.ofa<pid>-XXXX.tmp"), so the next write into a
directory removes what a killed writer left there, and never a live writer's file.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile

TEMP = re.compile(r"\.(?P<base>.+)\.ofa(?P<pid>\d{1,10})-[A-Za-z0-9_]+\.tmp")
# What ofa <= 0.1 left after a kill: mkstemp's 8 random characters without a pid, PEFT/HF staging dirs.
LEGACY_TEMP = re.compile(r"\.(.+)\.[A-Za-z0-9_]{8}\.tmp|\.adapter-[A-Za-z0-9_]{8}|\.backbone-[A-Za-z0-9_]{8}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return pid < 2**31  # someone else's live process (or a pid no process can have)
    return True


def remove_stale(directory: str) -> list[str]:
    """Delete temporary files and staging directories of killed ofa writers in `directory`."""
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        match = TEMP.fullmatch(name)
        stale = (match is not None and int(match["pid"]) != os.getpid() and not _alive(int(match["pid"]))) \
            or LEGACY_TEMP.fullmatch(name) is not None
        if not stale:
            continue
        path = os.path.join(directory, name)
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
            removed.append(name)
        except OSError:
            pass
    return removed


def temp_path(path: str, directory: bool = False) -> str:
    """A new temporary file (or directory) beside `path`, named for this process."""
    parent = os.path.dirname(os.path.abspath(path))
    prefix, suffix = "." + os.path.basename(path) + f".ofa{os.getpid()}-", ".tmp"
    if directory:
        return tempfile.mkdtemp(dir=parent, prefix=prefix, suffix=suffix)
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=prefix, suffix=suffix)
    os.close(fd)
    return tmp


def fsync_directory(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # some filesystems do not open directories; the rename is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def user_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str, write) -> None:
    """Call write(tmp_path), then flush and rename tmp_path onto path."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    remove_stale(directory)
    tmp = temp_path(path)
    try:
        write(tmp)
        os.chmod(tmp, user_mode())  # after write: a writer that renames its own temp file resets it
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_directory(directory)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str, data: bytes) -> None:
    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(data)
    atomic_write(path, write)


def atomic_write_json(path: str, obj) -> None:
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2)
    atomic_write(path, write)


def atomic_write_texts(files: dict[str, str]) -> None:
    """Write several text files: all to temporary names first, then rename them all, so a failed write
    leaves none of them changed (e.g. no new ofa_model.h beside a stale ofa_golden.h)."""
    temps = {}
    try:
        for directory in {os.path.dirname(os.path.abspath(p)) for p in files}:
            remove_stale(directory)
        for path, text in files.items():
            temps[path] = tmp = temp_path(path)
            with open(tmp, "w") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, user_mode())
        for path, tmp in temps.items():
            os.replace(tmp, path)
        for directory in {os.path.dirname(os.path.abspath(p)) for p in files}:
            fsync_directory(directory)
    finally:
        for tmp in temps.values():
            if os.path.exists(tmp):
                os.unlink(tmp)
