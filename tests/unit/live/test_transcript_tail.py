"""A conversation keeps the newest characters of each transcript, and counts all of it."""

from __future__ import annotations

from agent.live.conversation import TranscriptTail


def test_fragments_join_while_they_fit() -> None:
    tail = TranscriptTail(keep_chars=100)
    for word in ("The ", "lamp ", "is ", "on."):
        tail.append(word)
    assert "".join(tail) == tail.text == "The lamp is on."
    assert (tail.fragments, tail.chars, len(tail)) == (4, 15, 4)


def test_only_the_newest_characters_are_kept() -> None:
    tail = TranscriptTail(keep_chars=10)
    tail.append("abcdefgh")
    tail.append("ijkl")
    assert tail.text == "cdefghijkl"
    tail.append("x" * 1_000_000)
    assert tail.text == "x" * 10
    assert (tail.fragments, tail.chars) == (3, 1_000_012)


def test_a_million_fragments_keep_a_bounded_tail() -> None:
    tail = TranscriptTail(keep_chars=50)
    for n in range(1_000_000):
        tail.append(f"{n % 10}")
    assert len(tail.text) == 50 and len(tail) == 50
