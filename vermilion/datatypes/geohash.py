"""Geohash arithmetic as Redis does it (geohash.c, geohash_helper.c).

Points live in sorted sets with a 52-bit score: longitude and latitude, each cut into
2^26 steps over [-180, 180] and [-85.05112878, 85.05112878], bits interleaved
(latitude in the even positions). A search estimates a geohash precision from the
radius, takes the box holding the centre and its 8 neighbours, drops the neighbours the
search area cannot reach, and reads each box as one score range. Every step is the
same double arithmetic as Redis's C (the same libm functions underneath Python's math
module), so decoded coordinates, distances and the boxes searched are bit-identical.
"""

import math

GEO_STEP_MAX = 26
LONG_MIN, LONG_MAX = -180.0, 180.0
LAT_MIN, LAT_MAX = -85.05112878, 85.05112878
EARTH_RADIUS_IN_METERS = 6372797.560856
MERCATOR_MAX = 20037726.37
D_R = math.pi / 180.0

_M64 = (1 << 64) - 1


# libm returns NaN outside a function's domain (an infinite radius, rounding just past
# 1 under asin) where Python's math raises: the C results keep replies identical.
def _c(fn):
    def call(x):
        try:
            return fn(x)
        except ValueError:
            return math.nan
    return call


_sin, _cos, _asin, _sqrt = _c(math.sin), _c(math.cos), _c(math.asin), _c(math.sqrt)
_B = (0x5555555555555555, 0x3333333333333333, 0x0F0F0F0F0F0F0F0F,
      0x00FF00FF00FF00FF, 0x0000FFFF0000FFFF, 0x00000000FFFFFFFF)


def interleave64(xlo: int, ylo: int) -> int:
    """Bits of x in the even positions, bits of y in the odd ones."""
    x, y = xlo, ylo
    for shift, mask in ((16, _B[4]), (8, _B[3]), (4, _B[2]), (2, _B[1]), (1, _B[0])):
        x = (x | (x << shift)) & mask
        y = (y | (y << shift)) & mask
    return x | (y << 1)


def deinterleave64(interleaved: int) -> int:
    """The inverse: even bits in the low 32 bits, odd bits in the high 32."""
    x = interleaved
    y = interleaved >> 1
    for shift, mask in ((0, _B[0]), (1, _B[1]), (2, _B[2]), (4, _B[3]), (8, _B[4]),
                        (16, _B[5])):
        x = (x | (x >> shift)) & mask
        y = (y | (y >> shift)) & mask
    return x | ((y << 32) & _M64)


def encode(lon: float, lat: float, step: int,
           lon_range=(LONG_MIN, LONG_MAX), lat_range=(LAT_MIN, LAT_MAX)):
    """geohashEncode(): the step*2-bit hash, or None outside the ranges."""
    if (lon > LONG_MAX or lon < LONG_MIN or lat > LAT_MAX or lat < LAT_MIN
            or lat < lat_range[0] or lat > lat_range[1]
            or lon < lon_range[0] or lon > lon_range[1]):
        return None
    lat_offset = (lat - lat_range[0]) / (lat_range[1] - lat_range[0])
    lon_offset = (lon - lon_range[0]) / (lon_range[1] - lon_range[0])
    lat_offset *= 1 << step
    lon_offset *= 1 << step
    # C converts the doubles to uint32_t: truncation (2^step itself wraps to 0 at 32).
    return interleave64(int(lat_offset) & 0xFFFFFFFF, int(lon_offset) & 0xFFFFFFFF)


def decode_area(bits: int, step: int,
                lon_range=(LONG_MIN, LONG_MAX), lat_range=(LAT_MIN, LAT_MAX)):
    """geohashDecode(): (lon_min, lon_max, lat_min, lat_max) of the hash's box."""
    sep = deinterleave64(bits)
    lat_scale = lat_range[1] - lat_range[0]
    lon_scale = lon_range[1] - lon_range[0]
    ilato = sep & 0xFFFFFFFF
    ilono = sep >> 32
    div = float(1 << step)
    # ilato + 1 is uint32_t arithmetic in C (it only wraps for forged scores).
    return (lon_range[0] + (ilono * 1.0 / div) * lon_scale,
            lon_range[0] + (((ilono + 1) & 0xFFFFFFFF) * 1.0 / div) * lon_scale,
            lat_range[0] + (ilato * 1.0 / div) * lat_scale,
            lat_range[0] + (((ilato + 1) & 0xFFFFFFFF) * 1.0 / div) * lat_scale)


def decode_to_lonlat(bits: int, step: int = GEO_STEP_MAX) -> tuple[float, float]:
    """geohashDecodeAreaToLongLat(): the box centre, clamped to the valid ranges."""
    lon_min, lon_max, lat_min, lat_max = decode_area(bits, step)
    lon = (lon_min + lon_max) / 2
    lon = min(max(lon, LONG_MIN), LONG_MAX)
    lat = (lat_min + lat_max) / 2
    lat = min(max(lat, LAT_MIN), LAT_MAX)
    return lon, lat


def score_to_bits(score: float) -> int:
    """(uint64_t)score as x86-64 gcc converts a double: truncation, wrapping below
    zero, 0 from 2^64 up (the out-of-range results of cvttsd2si)."""
    if score < 9223372036854775808.0:
        if score <= -9223372036854775809.0:
            return 1 << 63
        return int(score) & _M64
    if score >= 18446744073709551616.0:
        return 0
    return int(score)


def decode_score(score: float) -> tuple[float, float]:
    return decode_to_lonlat(score_to_bits(score), GEO_STEP_MAX)


def align52(bits: int, step: int) -> int:
    return (bits << (52 - step * 2)) & _M64


# -- neighbours --------------------------------------------------------------------------


_X_BITS, _Y_BITS = 0xaaaaaaaaaaaaaaaa, 0x5555555555555555  # interleaved: x odd, y even


def _move(bits: int, step: int, d: int, axis: int, other: int) -> int:
    """geohash_move_x/_y(): the cell d (±1) steps along axis, the other bits kept."""
    if d == 0:
        return bits
    a = bits & axis
    b = bits & other
    zz = other >> (64 - step * 2)
    if d > 0:
        a = a + (zz + 1)
    else:
        a = (a | zz) - (zz + 1)
    a &= axis >> (64 - step * 2)
    return (a | b) & _M64


def _move_x(bits: int, step: int, d: int) -> int:
    return _move(bits, step, d, _X_BITS, _Y_BITS)


def _move_y(bits: int, step: int, d: int) -> int:
    return _move(bits, step, d, _Y_BITS, _X_BITS)


# The order membersOfAllNeighbors() visits: self, N, S, E, W, NE, NW, SE, SW.
_NEIGHBOUR_MOVES = ((0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (-1, 1), (1, -1), (-1, -1))


def neighbours(bits: int, step: int) -> list:
    return [_move_y(_move_x(bits, step, dx), step, dy) for dx, dy in _NEIGHBOUR_MOVES]


# -- distances ---------------------------------------------------------------------------


def lat_distance(lat1: float, lat2: float) -> float:
    """geohashGetLatDistance(): along a meridian asin(sin(x)) is x."""
    return EARTH_RADIUS_IN_METERS * abs(lat2 * D_R - lat1 * D_R)


def distance(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """geohashGetDistance(): haversine on Redis's earth radius, with Redis 7.0's
    shortcut to the meridian distance when the longitudes' sine term is zero."""
    lon1r = lon1 * D_R
    lon2r = lon2 * D_R
    v = _sin((lon2r - lon1r) / 2)
    if v == 0.0:
        return lat_distance(lat1, lat2)
    lat1r = lat1 * D_R
    lat2r = lat2 * D_R
    u = _sin((lat2r - lat1r) / 2)
    a = u * u + _cos(lat1r) * _cos(lat2r) * v * v
    return 2.0 * EARTH_RADIUS_IN_METERS * _asin(_sqrt(a))


def in_radius(lon: float, lat: float, x: float, y: float, radius: float):
    """The distance when (x, y) is within radius meters of (lon, lat), else None."""
    d = distance(lon, lat, x, y)
    return None if d > radius else d


def in_box(width: float, height: float, lon: float, lat: float, x: float, y: float):
    """geohashGetDistanceIfInRectangle(): the distance to the centre when (x, y) is in
    the width x height meters box centred on (lon, lat), else None."""
    if lat_distance(y, lat) > height / 2:
        return None
    if distance(x, y, lon, y) > width / 2:
        return None
    return distance(lon, lat, x, y)


# -- the boxes a search reads ------------------------------------------------------------


def estimate_steps(range_meters: float, lat: float) -> int:
    """geohashEstimateStepsByRadius()."""
    if range_meters == 0:
        return 26
    step = 1
    while range_meters < MERCATOR_MAX:
        range_meters *= 2
        step += 1
    step -= 2
    if lat > 66 or lat < -66:
        step -= 1
        if lat > 80 or lat < -80:
            step -= 1
    return min(max(step, 1), 26)


def bounding_box(lon: float, lat: float, half_height: float, half_width: float):
    """geohashBoundingBox(): (min_lon, min_lat, max_lon, max_lat) in degrees, widening
    the longitude span at the edge nearer the pole."""
    lat_delta = (half_height / EARTH_RADIUS_IN_METERS) / D_R
    long_delta_top = (half_width / EARTH_RADIUS_IN_METERS
                      / _cos((lat + lat_delta) * D_R)) / D_R
    long_delta_bottom = (half_width / EARTH_RADIUS_IN_METERS
                         / _cos((lat - lat_delta) * D_R)) / D_R
    delta = long_delta_bottom if lat < 0 else long_delta_top
    return lon - delta, lat - lat_delta, lon + delta, lat + lat_delta


def search_boxes(lon: float, lat: float, half_height: float, half_width: float,
                 radius_meters: float) -> list:
    """geohashCalculateAreasByShapeWGS84(): the (bits, step) of the centre box and its
    8 neighbours in membersOfAllNeighbors() order, None for the ones excluded.
    half_height / half_width are in meters, radius_meters the step estimate's input."""
    min_lon, min_lat, max_lon, max_lat = bounding_box(lon, lat, half_height, half_width)
    steps = estimate_steps(radius_meters, lat)
    bits = encode(lon, lat, steps)
    around = neighbours(bits, steps)
    north, south, east, west = (decode_area(b, steps) for b in around[:4])
    # The estimate can leave the area poking out of the 3x3 boxes near an edge of the
    # centre box: then use boxes twice as large.
    if (north[3] < max_lat or south[2] > min_lat or east[1] < max_lon
            or west[0] > min_lon) and steps > 1:
        steps -= 1
        bits = encode(lon, lat, steps)
        around = neighbours(bits, steps)
    boxes = [bits] + around
    if steps >= 2:
        a_lon_min, a_lon_max, a_lat_min, a_lat_max = decode_area(bits, steps)
        drop = set()
        if a_lat_min < min_lat:
            drop.update((2, 7, 8))  # south, south east, south west
        if a_lat_max > max_lat:
            drop.update((1, 5, 6))  # north, north east, north west
        if a_lon_min < min_lon:
            drop.update((4, 8, 6))  # west, south west, north west
        if a_lon_max > max_lon:
            drop.update((3, 7, 5))  # east, south east, north east
        for i in drop:
            boxes[i] = None
    return [None if b is None else (b, steps) for b in boxes]


def box_score_range(bits: int, step: int) -> tuple[int, int]:
    """scoresOfGeoHashBox(): [min, max) scores of the points inside the box."""
    return align52(bits, step), align52(bits + 1, step)


# -- pqsort.c ----------------------------------------------------------------------------

_ES = 40  # sizeof(geoPoint): pqsort's range tests compare byte addresses


def pqsort(items: list, key, reverse: bool, lo: int, hi: int) -> None:
    """Redis's partial quicksort (Bentley & McIlroy via NetBSD, without the switch to
    insertion sort that Redis removed): sorts items in place just enough for positions
    lo..hi to hold their final values. Not stable: GEORADIUS with COUNT orders equal
    distances this way, so it is ported step by step."""
    def cmp(i, j):
        a, b = key(items[i // _ES]), key(items[j // _ES])
        result = 1 if a > b else (0 if a == b else -1)
        return -result if reverse else result

    def swap(i, j):
        i //= _ES
        j //= _ES
        items[i], items[j] = items[j], items[i]

    def vecswap(i, j, n):
        for k in range(0, n, _ES):
            swap(i + k, j + k)

    def med3(a, b, c):
        if cmp(a, b) < 0:
            return b if cmp(b, c) < 0 else (c if cmp(a, c) < 0 else a)
        return b if cmp(b, c) > 0 else (a if cmp(a, c) < 0 else c)

    def insertion(a, n):
        pm = a + _ES
        while pm < a + n * _ES:
            pl = pm
            while pl > a and cmp(pl - _ES, pl) > 0:
                swap(pl, pl - _ES)
                pl -= _ES
            pm += _ES

    def outside(lrange, rrange, left, right):
        return (lrange < left and rrange < left) or (lrange > right and rrange > right)

    def sort(a, n, lrange, rrange):
        while True:
            if n < 7:
                insertion(a, n)
                return
            pm = a + (n // 2) * _ES
            if n > 7:
                pl = a
                pn = a + (n - 1) * _ES
                if n > 40:
                    d = (n // 8) * _ES
                    pl = med3(pl, pl + d, pl + 2 * d)
                    pm = med3(pm - d, pm, pm + d)
                    pn = med3(pn - 2 * d, pn - d, pn)
                pm = med3(pl, pm, pn)
            swap(a, pm)
            pa = pb = a + _ES
            pc = pd = a + (n - 1) * _ES
            while True:
                while pb <= pc:
                    result = cmp(pb, a)
                    if result > 0:
                        break
                    if result == 0:
                        swap(pa, pb)
                        pa += _ES
                    pb += _ES
                while pb <= pc:
                    result = cmp(pc, a)
                    if result < 0:
                        break
                    if result == 0:
                        swap(pc, pd)
                        pd -= _ES
                    pc -= _ES
                if pb > pc:
                    break
                swap(pb, pc)
                pb += _ES
                pc -= _ES
            pn = a + n * _ES
            r = min(pa - a, pb - pa)
            vecswap(a, pb - r, r)
            r = min(pd - pc, pn - pd - _ES)
            vecswap(pb, pn - r, r)
            r = pb - pa
            if r > _ES and not outside(lrange, rrange, a, a + r - 1):
                sort(a, r // _ES, lrange, rrange)
            r = pd - pc
            if r > _ES:
                a = pn - r
                n = r // _ES
                if not outside(lrange, rrange, a, a + r - 1):
                    continue
            return

    sort(0, len(items), lo * _ES, (hi + 1) * _ES - 1)
