"""The kernels package drops numba cache files compiled from other sources (controller.kernels)."""
from controller.kernels import STAMP_NAME, cache_dirs, drop_stale_cache, sources_digest


def _package(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "__pycache__").mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n")
    (pkg / "b.py").write_text("y = 2\n")
    return pkg


def _cache_files(directory, tag):
    files = [directory / f"b.kernel-{tag}.py311.nbi", directory / f"b.kernel-{tag}.py311.1.nbc"]
    for f in files:
        f.write_bytes(b"compiled")
    return files


def test_cache_of_other_sources_is_dropped_and_a_matching_one_kept(tmp_path, monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    pkg = _package(tmp_path)
    cache = pkg / "__pycache__"
    stale = _cache_files(cache, "old")        # no stamp yet: compiled from unknown sources
    assert drop_stale_cache(pkg) == 2
    assert not any(f.exists() for f in stale)
    assert (cache / STAMP_NAME).read_text().strip() == sources_digest(pkg)
    fresh = _cache_files(cache, "new")        # compiled from the current sources
    assert drop_stale_cache(pkg) == 0
    assert all(f.exists() for f in fresh)
    (pkg / "a.py").write_text("x = 3\n")      # an edit of another module than the one cached
    assert drop_stale_cache(pkg) == 2
    assert not any(f.exists() for f in fresh)
    assert (pkg / "a.py").exists() and (pkg / "b.py").exists()


def test_numba_cache_dir_mirror_is_checked_too(tmp_path, monkeypatch):
    pkg = _package(tmp_path)
    root = tmp_path / "numba-cache"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(root))
    dirs = cache_dirs(pkg)
    assert dirs[0] == pkg / "__pycache__" and dirs[1].is_relative_to(root)
    dirs[1].mkdir(parents=True)
    stale = _cache_files(dirs[1], "old")
    assert drop_stale_cache(pkg) == 2
    assert not any(f.exists() for f in stale)
    assert (dirs[1] / STAMP_NAME).is_file()


def test_digest_follows_names_and_contents(tmp_path):
    pkg = _package(tmp_path)
    first = sources_digest(pkg)
    (pkg / "b.py").rename(pkg / "c.py")
    assert sources_digest(pkg) != first
