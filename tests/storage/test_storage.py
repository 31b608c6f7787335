"""Both storage engines obey the same contract."""

from __future__ import annotations

import itertools
import sqlite3
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gossipdht.core.hashing import RING_SIZE, digest
from gossipdht.core.hlc import TIMESTAMP_LIMIT, Version
from gossipdht.storage import Record, StoreBusy, open_store, ring_order
from gossipdht.storage.buckets import BUCKET_BITS, BUCKET_WIDTH

WHOLE = [(0, RING_SIZE)]


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    s = open_store(request.param, str(tmp_path))
    yield s
    s.close()


def rec(ts, node="n", value=b"v", deleted=False):
    return Record(Version(ts, node), b"" if deleted else value, "text/plain", deleted)


def test_roundtrip_keeps_value_type_and_version(store):
    store.write([("k", Record(Version(7, "a"), b"\x00\xff", "image/png"))])
    assert store.get("k") == Record(Version(7, "a"), b"\x00\xff", "image/png", False)
    assert store.get("other") is None


def test_newer_version_wins_whatever_the_order(store):
    store.write([("k", rec(5, value=b"new"))])
    store.write([("k", rec(3, value=b"old"))])
    assert store.get("k").value == b"new"
    store.write([("k", rec(5, node="m", value=b"tie"))])
    assert store.get("k").value == b"new"  # same timestamp: the larger node name wins
    store.write([("k", rec(5, node="o", value=b"tie"))])
    assert store.get("k").value == b"tie"


def test_a_write_names_the_newer_stored_versions_that_beat_it(store):
    assert store.write([("a", rec(5)), ("b", rec(5)), ("big", rec(5, value=b"x" * 100_000))]) == {}
    beaten = store.write([("a", rec(3)), ("b", rec(7)), ("c", rec(1)), ("big", rec(4, value=b"y" * 100_000)),
                          ("dup", rec(9)), ("dup", rec(8))])
    assert beaten == {"a": Version(5, "n"), "big": Version(5, "n"), "dup": Version(9, "n")}
    assert store.write([("b", rec(7))]) == {}  # the same version again is no conflict
    assert store.get("b").version == Version(7, "n") and store.get("big").value == b"x" * 100_000


def test_tombstones_are_kept_but_not_listed(store):
    store.write([("a", rec(1)), ("b", rec(1))])
    store.write([("a", rec(2, deleted=True))])
    assert store.get("a").deleted
    assert store.keys(None, 10) == ["b"]
    store.write([("a", rec(1))])  # an older write does not undo the deletion
    assert store.get("a").deleted
    store.write([("a", rec(3, value=b"back"))])
    assert store.keys(None, 10) == ["a", "b"]


def test_keys_page_in_ring_order(store):
    keys = ["b", "a", "\u00e5", "A", "a/b", "\U0001f600", "a\x00"]
    store.write([(k, rec(1)) for k in keys])
    assert store.keys(None, 100) == sorted(keys, key=ring_order)
    pages, after = [], None
    while page := store.keys(after, 2):
        pages.append(page)
        after = page[-1]
    assert list(itertools.chain(*pages)) == sorted(keys, key=ring_order)
    assert all(len(p) <= 2 for p in pages)


def test_scans_with_a_bound_leave_out_the_records_from_it_on(store):
    from gossipdht.core.hashing import RING_SIZE, digest

    whole = [(0, RING_SIZE)]
    store.write([("old", rec(10)), ("edge", rec(20)), ("new", rec(30, deleted=True))])
    assert store.versions(whole, 20) == [("old", Version(10, "n"))]
    assert store.digests(whole, 20) == [(1, digest("old", 10, "n"))]
    assert sorted(store.versions(whole)) == [("edge", Version(20, "n")), ("new", Version(30, "n")),
                                             ("old", Version(10, "n"))]
    assert store.digests(whole)[0][0] == 3


def test_max_timestamp(store):
    assert store.max_timestamp() == 0
    store.write([("a", rec(9)), ("b", rec(4))])
    store.write([("a", rec(2))])
    assert store.max_timestamp() == 9


def test_reserved_timestamp_is_kept_apart_and_only_raised(store):
    assert store.reserved_timestamp() == 0
    store.reserve_timestamp(50)
    store.write([("a", rec(9))])
    assert (store.reserved_timestamp(), store.max_timestamp()) == (50, 9)
    store.reserve_timestamp(70)
    store.reserve_timestamp(60)
    assert (store.reserved_timestamp(), store.max_timestamp()) == (70, 9)


def test_sqlite_keeps_everything_across_reopen(tmp_path):
    s = open_store("sqlite", str(tmp_path))
    s.write([("a", rec(3, value=b"x")), ("b", rec(4, deleted=True))])
    s.close()
    s = open_store("sqlite", str(tmp_path))
    assert s.get("a") == rec(3, value=b"x") and s.get("b").deleted
    assert s.max_timestamp() == 4
    s.close()


def test_sqlite_keeps_the_reserved_timestamp_across_reopen(tmp_path):
    s = open_store("sqlite", str(tmp_path))
    s.reserve_timestamp(TIMESTAMP_LIMIT - 1)
    s.close()
    s = open_store("sqlite", str(tmp_path))
    assert (s.reserved_timestamp(), s.max_timestamp()) == (TIMESTAMP_LIMIT - 1, 0)
    s.close()


def test_sqlite_uses_wal(tmp_path):
    open_store("sqlite", str(tmp_path)).close()
    db = sqlite3.connect(tmp_path / "records.sqlite3")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("sync, synchronous", [("normal", 1), ("full", 2)])
def test_sqlite_sync_sets_synchronous_on_every_connection(tmp_path, sync, synchronous):
    s = open_store("sqlite", str(tmp_path), sync)
    connections = (s._writer, s._checkpointer, s._db, s._scanner)
    assert [db.execute("PRAGMA synchronous").fetchone()[0] for db in connections] == [synchronous] * 4
    s.write([("a", rec(1))])  # FULL: SQLite syncs the WAL in this commit
    assert s.get("a") == rec(1)
    s.close()


def test_sqlite_refuses_an_unknown_sync(tmp_path):
    with pytest.raises(ValueError, match="sync 'off' is not one of normal, full"):
        open_store("sqlite", str(tmp_path), "off")


def test_large_values_keep_one_blob_per_record_and_none_after(tmp_path):
    from gossipdht.storage.sqlite import INLINE_BYTES

    s = open_store("sqlite", str(tmp_path))
    blobs = sqlite3.connect(tmp_path / "records.sqlite3")

    def count():
        return blobs.execute("SELECT count(*) FROM blobs").fetchone()[0]

    large = [bytes([i]) * (INLINE_BYTES + 1) for i in range(4)]
    s.write([("a", rec(2, value=large[0])), ("b", rec(1, value=large[1]))])
    assert (s.get("a").value, s.get("b").value, count()) == (large[0], large[1], 2)
    s.write([("a", rec(1, value=large[2]))])  # older: refused, and no blob left behind
    assert (s.get("a").value, count()) == (large[0], 2)
    s.write([("a", rec(3, value=large[2])), ("a", rec(4, value=large[3]))])  # newer, twice in a batch
    assert (s.get("a").value, count()) == (large[3], 2)
    assert s.get_many(["a", "b"]) == [rec(4, value=large[3]), rec(1, value=large[1])]
    s.write([("a", rec(5, value=b"small"))])
    assert (s.get("a").value, count()) == (b"small", 1)
    assert s.remove([("b", Version(1, "n"))]) == 1
    assert count() == 0
    s.close()


def test_sqlite_batch_is_all_or_nothing(tmp_path):
    s = open_store("sqlite", str(tmp_path))
    s.write([("a", rec(1))])
    with pytest.raises(sqlite3.Error):
        s.write([("b", rec(1)), ("c", Record(Version(1, "n"), b"x" * 300, object()))])
    assert s.get("b") is None and s.get("a") is not None
    s.write([("d", rec(1))])  # the next commit must not carry what the failed one staged
    assert s.digests(WHOLE) == s.digests(WHOLE, TIMESTAMP_LIMIT) == [(2, digest("a", 1, "n") + digest("d", 1, "n"))]
    s.close()


tokens = st.one_of(st.integers(0, RING_SIZE), st.integers(0, 1 << BUCKET_BITS).map(lambda b: b * BUCKET_WIDTH))
token_ranges = st.lists(st.tuples(tokens, tokens).map(sorted).filter(lambda r: r[0] < r[1]).map(tuple), max_size=8)


@settings(max_examples=40, deadline=None)
@given(writes=st.lists(st.tuples(st.integers(0, 40), st.integers(1, 9), st.booleans()), max_size=80),
       removed=st.lists(st.integers(0, 40), max_size=10), ranges=token_ranges)
def test_sqlite_digests_kept_as_records_change_equal_a_scan(tmp_path_factory, writes, removed, ranges):
    """Inserts, newer and older versions, tombstones, removals, purges and a restart;
    the counts of records follow the same sums."""
    ranges = ranges + WHOLE + [(0, BUCKET_WIDTH * 3 + 5), (BUCKET_WIDTH - 1, BUCKET_WIDTH + 1)]
    path = str(tmp_path_factory.mktemp("sqlite"))
    s, fresh = open_store("sqlite", path), open_store("memory", "")
    items = [(f"k{n}", rec(ts, deleted=deleted)) for n, ts, deleted in writes]
    for i in range(0, len(items), 7):
        s.write(items[i : i + 7])
        fresh.write(items[i : i + 7])
    gone = [(f"k{n}", s.get(f"k{n}").version) for n in removed if s.get(f"k{n}")]
    assert s.remove(gone) == fresh.remove(gone)
    assert s.purge_tombstones(5) == fresh.purge_tombstones(5)
    expected = fresh.digests(ranges)
    assert s.digests(ranges) == s.digests(ranges, TIMESTAMP_LIMIT) == expected
    assert s.counts() == fresh.counts()  # live records and tombstones, from the bucket sums
    s.close()
    s = open_store("sqlite", path)
    assert s.digests(ranges) == expected
    assert s.counts() == fresh.counts()
    s.close()


keys = st.text(st.characters(codec="utf-8"), min_size=1, max_size=8)
writes = st.lists(
    st.tuples(keys, st.integers(0, 20), st.sampled_from("abc"), st.booleans(), st.binary(max_size=4)),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(writes=writes, order=st.randoms(use_true_random=False))
def test_engines_converge_on_the_newest_version_in_any_order(tmp_path_factory, writes, order):
    # The system never issues one version twice, so neither does the test.
    unique = {(ts, n): (k, ts, n, d, v) for k, ts, n, d, v in writes}.values()
    records = [(k, Record(Version(ts, n), b"" if d else v, "t", d)) for k, ts, n, d, v in unique]
    expected = {}
    for key, record in records:
        if key not in expected or record.version > expected[key].version:
            expected[key] = record
    shuffled = records[:]
    order.shuffle(shuffled)
    for engine in ("memory", "sqlite"):
        s = open_store(engine, str(tmp_path_factory.mktemp(engine)))
        for i in range(0, len(shuffled), 3):
            s.write(shuffled[i : i + 3])
        for key, record in expected.items():
            assert s.get(key).version == record.version
        assert s.keys(None, 1000) == sorted((k for k, r in expected.items() if not r.deleted), key=ring_order)
        s.close()



def test_sqlite_commits_leave_the_database_file_to_the_checkpoints(tmp_path):
    s = open_store("sqlite", str(tmp_path))
    database = tmp_path / "records.sqlite3"
    empty = database.stat().st_size
    s.write([(f"k{i}", rec(1, value=b"x" * 100)) for i in range(2000)])
    assert database.stat().st_size == empty  # all in the WAL: no commit waited for a copy
    s.checkpoint()
    assert database.stat().st_size > empty + 200_000
    assert s.get("k1999").value == b"x" * 100
    s.close()


def test_a_long_wal_is_finished_by_the_writer(tmp_path, monkeypatch):
    import gossipdht.storage.sqlite

    monkeypatch.setattr(gossipdht.storage.sqlite, "WAL_FINISH_FRAMES", 10)
    s = open_store("sqlite", str(tmp_path))
    s.write([(f"k{i}", rec(1, value=b"x" * 100)) for i in range(2000)])
    s.checkpoint()  # copies what is there, and sees a long WAL
    s.write([("written-after-the-checkpoint", rec(1))])  # ... so this commit finishes the job
    assert b"written-after-the-checkpoint" in (tmp_path / "records.sqlite3").read_bytes()
    s.close()


def test_sqlite_refuses_a_database_of_another_layout(tmp_path):
    """No released version wrote another layout: one found is refused, not rewritten."""
    path = tmp_path / "records.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE records (key TEXT PRIMARY KEY, value BLOB)")
        db.execute("INSERT INTO records VALUES ('a', x'00')")
    with pytest.raises(ValueError, match="its database has layout 0; this gossipdht reads layout 2"):
        open_store("sqlite", str(tmp_path))
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT key FROM records").fetchall() == [("a",)]


def test_sqlite_write_that_may_not_wait_is_refused_while_another_thread_writes(tmp_path):
    s = open_store("sqlite", str(tmp_path))
    inside, release = threading.Event(), threading.Event()

    def long_write():
        with s._transaction():  # a transaction held open, as a large one is
            inside.set()
            release.wait(10)

    writer = threading.Thread(target=long_write)
    writer.start()
    try:
        assert inside.wait(10)
        with pytest.raises(StoreBusy):
            s.write([("a", rec(1))], wait=False)
    finally:
        release.set()
        writer.join()
    s.write([("a", rec(1))], wait=False)  # free again
    assert s.get("a") == rec(1)
    s.close()

