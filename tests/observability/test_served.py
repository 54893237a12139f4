"""The feedback index: bounded, first in first out, compact."""

import os
import tracemalloc

from tiergate.observability.served import Served, ServedIndex


def test_keeps_the_last_requests_and_forgets_the_oldest():
    index = ServedIndex(limit=4)  # two generations of two
    ids = [os.urandom(16).hex() for _ in range(7)]
    for i, rid in enumerate(ids):
        index.add(rid, Served("auto", f"m{i % 2}", "budget", "team"))
        assert len(index) <= 4
        # the last limit/2 requests are always known
        assert index.get(ids[i]) is not None and (i == 0 or index.get(ids[i - 1]) is not None)
    assert len(index) == 3  # ids 4, 5 | 6
    assert all(index.get(rid) is None for rid in ids[:4])
    assert index.get(ids[6]) == Served("auto", "m0", "budget", "team")
    assert index.get(ids[4].upper()) == index.get(ids[4])  # hex is hex
    assert index.get("not-an-id") is None


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


def test_an_entry_costs_about_a_hundred_bytes():
    ids = [os.urandom(16).hex() for _ in range(20_000)]
    index = ServedIndex(limit=100_000)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for rid in ids:
        index.add(rid, Served("auto", "small-model", "budget", "team"))
    per_entry = (tracemalloc.get_traced_memory()[0] - before) / len(ids)
    tracemalloc.stop()
    assert per_entry < 150, per_entry


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
