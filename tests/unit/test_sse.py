from gateway.sse import SSEDecoder


def test_events_split_across_chunks_are_reassembled() -> None:
    d = SSEDecoder()
    assert d.feed(b'data: {"a"') == []
    evs = d.feed(b":1}\n\ndata: [DONE]\n\n")
    assert [e.data for e in evs] == [b'{"a":1}', b"[DONE]"]
    assert evs[0].encode() == b'data: {"a":1}\n\n'


def test_many_events_in_one_chunk_and_crlf() -> None:
    evs = SSEDecoder().feed(b"data: 1\r\n\r\ndata: 2\r\n\r\n: comment\r\n\r\ndata: 3\r\n\r\n")
    assert [e.data for e in evs] == [b"1", b"2", b"3"]


def test_named_events_and_multiline_data() -> None:
    evs = SSEDecoder().feed(b"event: message_start\ndata: a\ndata: b\n\n")
    assert evs[0].event == "message_start" and evs[0].data == b"a\nb"


def test_flush_returns_an_unterminated_last_event() -> None:
    d = SSEDecoder()
    assert d.feed(b"data: tail") == []
    assert [e.data for e in d.flush()] == [b"tail"]
