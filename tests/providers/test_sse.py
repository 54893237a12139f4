"""The incremental server-sent-events parser."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tiergate.providers.base import SSEEvent
from tiergate.providers.sse import SSEParser


def test_events_with_names_multiline_data_and_comments():
    raw = (
        b": keep-alive\n\n"
        b'event: message_start\ndata: {"a":1}\n\n'
        b"data: line one\ndata: line two\n\n"
        b"data:no space\n\n"
        b"data\n\n"
        b"id: 7\nretry: 100\ndata: x\n\n"
    )
    assert SSEParser().feed(raw) == [
        SSEEvent('{"a":1}', "message_start"),
        SSEEvent("line one\nline two"),
        SSEEvent("no space"),
        SSEEvent(""),
        SSEEvent("x"),
    ]


def test_crlf_line_ends_split_between_reads():
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\n\r") == []
    assert parser.feed(b"\ndata: b\r\n\r\n") == [SSEEvent("a"), SSEEvent("b")]


def test_event_name_resets_after_each_event():
    events = SSEParser().feed(b"event: ping\ndata: 1\n\ndata: 2\n\n")
    assert [e.event for e in events] == ["ping", "message"]


def test_next_hands_out_one_event_at_a_time():
    parser = SSEParser()
    parser.push(b"".join(b"data: %d\n\n" % i for i in range(1000)))
    assert parser.next() == SSEEvent("0")
    assert parser.next() == SSEEvent("1")
    rest = []
    while (event := parser.next()) is not None:
        rest.append(event.data)
    assert rest == [str(i) for i in range(2, 1000)]


def test_close_flushes_an_unterminated_last_event():
    parser = SSEParser()
    assert parser.feed(b"data: last") == []
    assert parser.close() == [SSEEvent("last")]
    assert SSEParser().close() == []


def test_pending_counts_the_bytes_of_the_event_in_progress():
    parser = SSEParser()
    parser.feed(b"data: done\n\n")
    assert parser.pending == 0
    parser.feed(b"data: " + b"x" * 100)
    assert parser.pending == 106
    parser.feed(b"\ndata: more")  # a line of the event is parsed, the event is not over
    assert parser.pending == 106 + 1 + 10
    parser.feed(b"\n\n")
    assert parser.pending == 0
    parser.feed(b": comment only\n")  # comments hold nothing
    assert parser.pending == 0


def test_a_long_line_in_many_small_pieces():
    parser = SSEParser()
    for _ in range(10_000):
        assert parser.feed(b"y" * 10) == []
    assert parser.pending == 100_000
    assert parser.feed(b"\n\n") == []  # "yyyy…" is a field without a name we know


@given(st.lists(st.text(max_size=20), max_size=10), st.data())
def test_any_split_gives_the_same_events(datas, data):
    raw = b"".join(f"data: {d}\r\n\r\n".encode() for d in datas if "\n" not in d and "\r" not in d)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=8)))
    parser = SSEParser()
    got = []
    for start, end in zip([0, *cuts], [*cuts, len(raw)], strict=True):
        got += parser.feed(raw[start:end])
    assert got == SSEParser().feed(raw)
