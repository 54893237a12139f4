"""The feedback index: bounded, first in first out, compact."""

import os
import tracemalloc

from tiergate.observability.served import Served, ServedIndex


def test_keeps_the_last_requests_and_forgets_the_oldest():
    index = ServedIndex(limit=4)
    ids = [os.urandom(16).hex() for _ in range(7)]
    for i, rid in enumerate(ids):
        index.add(rid, Served("auto", f"m{i % 2}", "budget", "team"))
        assert len(index) == min(i + 1, 4)
        # exactly the last `limit` requests are known
        assert all(index.get(r) is not None for r in ids[max(0, i - 3) : i + 1])
        assert all(index.get(r) is None for r in ids[: max(0, i - 3)])
    assert index.get(ids[6]) == Served("auto", "m0", "budget", "team")
    assert index.get(ids[5]) == Served("auto", "m1", "budget", "team")
    assert index.get(ids[4].upper()) == index.get(ids[4])  # hex is hex
    assert index.get("not-an-id") is None
    assert ServedIndex(limit=4).get(ids[0]) is None  # an empty index knows nothing


def test_an_id_straddling_two_slots_is_not_a_match():
    index = ServedIndex(limit=3)
    a, b = bytes(range(16)), bytes(range(16, 32))
    index.add(a.hex(), Served("auto", "a", None, None))
    index.add(b.hex(), Served("auto", "b", None, None))
    straddling = (a[8:] + b[:8]).hex()
    assert index.get(straddling) is None
    index.add(straddling, Served("auto", "s", None, None))
    assert index.get(straddling) == Served("auto", "s", None, None)


def test_a_repeated_id_answers_with_its_newest_entry():
    index = ServedIndex(limit=5)
    rid = os.urandom(16).hex()
    index.add(rid, Served("auto", "old", None, None))
    for _ in range(2):
        index.add(os.urandom(16).hex(), Served("auto", "x", None, None))
    index.add(rid, Served("auto", "new", None, None))
    for _ in range(3):  # the ring turns: the newest entry is now before the write position
        index.add(os.urandom(16).hex(), Served("auto", "x", None, None))
    assert index.get(rid) == Served("auto", "new", None, None)


def test_ids_of_any_shape_are_kept():
    index = ServedIndex(limit=10)
    index.add("judge-1", Served("auto", "m", None, None))
    assert index.get("judge-1") == Served("auto", "m", None, None)


def test_identical_destinations_are_shared():
    index = ServedIndex(limit=10)
    a, b = os.urandom(16).hex(), os.urandom(16).hex()
    index.add(a, Served("auto", "m", "budget", "k"))
    index.add(b, Served("auto", "m", "budget", "k"))
    assert index.get(a) is index.get(b)


def test_the_memory_is_taken_at_start_and_never_grows():
    ids = [os.urandom(16).hex() for _ in range(20_000)]
    where = Served("auto", "small-model", "budget", "team")
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    index = ServedIndex(limit=10_000)
    allocated = tracemalloc.get_traced_memory()[0] - before
    assert allocated < 10_000 * 24, allocated  # 20 bytes a slot, and a little besides
    for rid in ids:  # the ring turns twice
        index.add(rid, where)
    grown = tracemalloc.get_traced_memory()[0] - before - allocated
    tracemalloc.stop()
    assert grown < 1_000, grown


def test_memory_stays_flat_long_after_the_index_is_full():
    index = ServedIndex(limit=4_000)
    where = Served("auto", "small-model", "budget", "team")
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(8_000):  # two full turns: both generations at their largest
        index.add(os.urandom(16).hex(), where)
    full = tracemalloc.get_traced_memory()[0] - before
    for _ in range(40_000):
        index.add(os.urandom(16).hex(), where)
    later = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert later <= full * 1.1, (full, later)
