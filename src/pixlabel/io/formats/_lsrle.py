"""Label Studio's brush masks: the RGBA pixels of the image, flattened row by row, in the bit-packed run-length
code of thi.ng's ``rle-pack`` that its frontend writes.

Layout, most significant bit first: a 32-bit value count, 5 bits of word size - 1, four 4-bit run-length
field sizes - 1; then blocks of [1 bit: repeat?][2 bits: which field size][that many bits: run - 1] followed
by one word repeated run times, or run literal words. The mask is the alpha channel (non-zero = inside).

>>> m = np.array([[0, 1, 1], [0, 0, 1]], np.uint8)
>>> rle = encode_brush(m)
>>> decode_brush(rle, (2, 3)).tolist()
[[0, 1, 1], [0, 0, 1]]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_FIELDS = (4, 8, 12, 16)  # run-length field sizes this encoder declares (bits)


class _Bits:
    def __init__(self, data: Sequence[int]) -> None:
        self.bits = np.unpackbits(np.asarray(data, dtype=np.uint8))
        self.pos = 0

    def read(self, n: int) -> int:
        if self.pos + n > len(self.bits):
            raise ValueError("brush RLE ends early")
        chunk = self.bits[self.pos:self.pos + n]
        self.pos += n
        return int("".join("1" if b else "0" for b in chunk), 2) if n else 0


def decode_brush(rle: Sequence[int], image_size: tuple[int, int]) -> np.ndarray:
    """The ``(h, w)`` uint8 0/1 mask of a brush RLE drawn on an image of ``image_size``.

    Raises ValueError when the code is malformed or does not hold ``h * w`` RGBA pixels.
    """
    if not all(isinstance(v, int) and 0 <= v < 256 for v in rle):
        raise ValueError("brush RLE must be a list of bytes (0-255)")
    stream = _Bits(rle)
    count = stream.read(32)
    h, w = image_size
    if count != h * w * 4:
        raise ValueError(f"brush RLE holds {count} values, expected {h * w * 4} (RGBA of a {w}x{h} image)")
    word = stream.read(5) + 1
    sizes = [stream.read(4) + 1 for _ in range(4)]
    out = np.zeros(count, dtype=np.uint8)
    i = 0
    while i < count:
        repeat = stream.read(1)
        end = min(count, i + 1 + stream.read(sizes[stream.read(2)]))
        if repeat:
            out[i:end] = stream.read(word)
        else:
            for k in range(i, end):
                out[k] = stream.read(word)
        i = end
    return (out.reshape(h, w, 4)[:, :, 3] > 0).astype(np.uint8)


def encode_brush(mask: np.ndarray) -> list[int]:
    """A ``(h, w)`` mask as brush RLE bytes (every channel 255 inside, 0 outside; repeat blocks only)."""
    flat = np.repeat((np.asarray(mask) > 0).astype(np.uint8) * 255, 4)  # (h*w*4,) RGBA, row by row
    edges = np.flatnonzero(np.diff(flat)) + 1
    starts = np.concatenate([[0], edges])
    ends = np.concatenate([edges, [flat.size]])
    out: list[str] = [format(flat.size, "032b"), format(8 - 1, "05b"), *(format(s - 1, "04b") for s in _FIELDS)]
    longest = 1 << _FIELDS[-1]
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        value = format(int(flat[start]), "08b")
        while start < end:
            run = min(end - start, longest)
            field = next(n for n, s in enumerate(_FIELDS) if run - 1 < (1 << s))
            out.append(f"1{field:02b}{run - 1:0{_FIELDS[field]}b}{value}")
            start += run
    bits = "".join(out)
    bits += "0" * (-len(bits) % 8)
    return [int(bits[k:k + 8], 2) for k in range(0, len(bits), 8)]
