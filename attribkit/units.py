"""Shared units of two tokenizations of one text: the merged character spans both agree on.

Every real token is placed on its character span within its segment (text or pair); spans that
overlap, across both tokenizations, merge into one unit (in practice a word, or a word and its
attached punctuation). Special tokens and empty spans belong to no unit. The attribution maps of
two models with different tokenizers are compared, and distilled, on these units.
"""

from __future__ import annotations

from collections.abc import Sequence

Span = tuple[int, int]
Unit = tuple[int, int, int]  # (segment, start, end)


def shared_units(
    first_offsets: Sequence[Span],
    first_segments: Sequence[int],
    second_offsets: Sequence[Span],
    second_segments: Sequence[int],
) -> list[Unit]:
    """The units both tokenizations agree on, in text order (segment, then start)."""
    units: list[Unit] = []
    segments = sorted({s for s in (*first_segments, *second_segments) if s >= 0})
    for segment in segments:
        spans = sorted(
            (int(start), int(end))
            for offsets, segs in ((first_offsets, first_segments), (second_offsets, second_segments))
            for (start, end), s in zip(offsets, segs)
            if s == segment and end > start
        )
        for start, end in spans:
            if units and units[-1][0] == segment and start < units[-1][2]:
                units[-1] = (segment, units[-1][1], max(units[-1][2], end))
            else:
                units.append((segment, start, end))
    return units


def unit_members(offsets: Sequence[Span], segments: Sequence[int], units: Sequence[Unit]) -> list[int]:
    """For each token, the index of the unit containing it, or -1 (special tokens, empty spans)."""
    members = []
    for (start, end), segment in zip(offsets, segments):
        index = -1
        if segment >= 0 and end > start:
            index = next((u for u, (s, a, b) in enumerate(units) if s == segment and a <= start and end <= b), -1)
        members.append(index)
    return members
