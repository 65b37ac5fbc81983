"""numba kernels of the controller (see each module).

numba's on-disk cache (``cache=True``, ``controller.kernels.jit``) checks only the source file of the
function it loads, yet a cached function holds the machine code of every kernel it calls, inlined from
other modules. After an edit of ``rtu.py`` alone, ``agent_step``'s cached kernels would keep running the
old RTU code, silently. So on import this package compares a digest of all its sources with the one
recorded next to the cache, and drops the cache files of this package when they differ
(``drop_stale_cache``). A ``git pull`` or an upgrade then recompiles once instead of mixing versions.
"""
import hashlib
import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
STAMP_NAME = "kernels-sources.sha256"


def sources_digest(package_dir=PACKAGE_DIR):
    """SHA-256 (hex) over the names and contents of the package's ``*.py`` files, in name order."""
    h = hashlib.sha256()
    for path in sorted(Path(package_dir).glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def cache_dirs(package_dir=PACKAGE_DIR):
    """Where numba keeps this package's cache files: ``__pycache__`` next to the sources, and, when
    ``NUMBA_CACHE_DIR`` is set, the directory numba derives from the package path there
    (``<name>_<sha1 of the absolute path>``, numba.core.caching._CacheLocator)."""
    dirs = [Path(package_dir) / "__pycache__"]
    root = os.environ.get("NUMBA_CACHE_DIR")
    if root:
        path = os.path.abspath(package_dir)
        hashed = hashlib.sha1(path.encode()).hexdigest()
        dirs.append(Path(root) / f"{os.path.basename(path)}_{hashed}")
    return dirs


def drop_stale_cache(package_dir=PACKAGE_DIR):
    """Delete the numba cache files (``*.nbi``, ``*.nbc``) of the package in every cache directory
    whose recorded source digest differs from the current one, then record the current digest.
    Returns the number of files deleted. Best effort: a directory that cannot be written is skipped
    (numba then falls back to its own locations, and recompiles when it cannot write either)."""
    digest = sources_digest(package_dir)
    dropped = 0
    for directory in cache_dirs(package_dir):
        stamp = directory / STAMP_NAME
        try:
            if stamp.is_file() and stamp.read_text().strip() == digest:
                continue
            if directory.is_dir():
                for path in list(directory.glob("*.nbi")) + list(directory.glob("*.nbc")):
                    path.unlink(missing_ok=True)  # another process may be first
                    dropped += 1
            directory.mkdir(parents=True, exist_ok=True)
            stamp.write_text(digest + "\n")
        except OSError:
            continue
    return dropped


drop_stale_cache()
