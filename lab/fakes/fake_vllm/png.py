"""Just enough PNG decoding for the fake engine to 'see' an image: size and mean colour of 8-bit
RGB/RGBA/grey non-interlaced PNGs (stdlib zlib). Large images are sampled: the first 64 rows,
every few pixels (each row's filter depends only on the row above, so a prefix decodes exactly)."""
import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(raw):
    if raw[:8] != SIGNATURE or raw[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", raw[16:24])


def mean_colour(raw):
    w, h = png_size(raw)
    depth, ctype, interlace = raw[24], raw[25], raw[28]
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(ctype)
    if depth != 8 or channels is None or interlace:
        raise ValueError("unsupported PNG layout")
    pos, idat = 8, b""
    while pos < len(raw):
        length = struct.unpack(">I", raw[pos:pos + 4])[0]
        kind = raw[pos + 4:pos + 8]
        if kind == b"IDAT":
            idat += raw[pos + 8:pos + 8 + length]
        pos += 12 + length
    data = zlib.decompress(idat)
    stride = w * channels
    prev = bytearray(stride)
    total = [0, 0, 0]
    rows = min(h, 64)
    step = max(1, w // 256)
    n = 0
    for y in range(rows):
        f = data[y * (stride + 1)]
        line = bytearray(data[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xFF
            elif f == 2:
                line[i] = (line[i] + b) & 0xFF
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        for x in range(0, w, step):
            px = line[x * channels:(x + 1) * channels]
            rgb = (px[0], px[0], px[0]) if channels < 3 else (px[0], px[1], px[2])
            for k in range(3):
                total[k] += rgb[k]
            n += 1
        prev = line
    return tuple(t // n for t in total)
