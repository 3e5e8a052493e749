"""Geospatial commands (Redis's geo.c): GEOADD, GEOPOS, GEODIST, GEOHASH, GEOSEARCH,
GEOSEARCHSTORE, GEORADIUS, GEORADIUSBYMEMBER and their _RO variants.

A geo set is a sorted set (datatypes/zset.py) whose scores are 52-bit interleaved
geohashes (datatypes/geohash.py). Coordinates are always the centre of the stored
hash's cell, as Redis decodes them, and searches read the same 9 boxes in the same
order as Redis's geohashCalculateAreasByShapeWGS84() + membersOfAllNeighbors(), so
unsorted results, COUNT ANY cut-offs and ties come out identical. Replies format
numbers as Redis does: distances "%.4f" bulk strings, coordinates "%.17Lf" with the
trailing zeros trimmed (a bulk string in RESP2, a double in RESP3), hashes integers.
"""

import math

from ..datatypes import geohash as gh
from ..datatypes.zset import ScoreRange, ZSet, from_scores
from ..protocol import errors
from ..protocol.encode import NULL_ARRAY, Raw
from ..protocol.errors import CommandError
from ..protocol.numbers import parse_int
from .registry import command
from ..notify import notify, notify_store
from .strings import read_value
from .zsets import _zadd_apply, parse_score, zset_limits

UNSUPPORTED_UNIT = "ERR unsupported unit provided. please use M, KM, FT, MI"
MEMBER_UNKNOWN = "ERR could not decode requested zset member"
RADIUS_NEGATIVE = "ERR radius cannot be negative"
BOX_NEGATIVE = "ERR height or width cannot be negative"
COUNT_POSITIVE = "ERR COUNT must be > 0"
ANY_NEEDS_COUNT = "ERR the ANY argument requires COUNT argument"

_UNITS = {b"m": 1.0, b"km": 1000.0, b"ft": 0.3048, b"mi": 1609.34}
_GEOALPHABET = b"0123456789bcdefghjkmnpqrstuvwxyz"


# -- argument helpers --------------------------------------------------------------------


def _lonlat(raw_lon: bytes, raw_lat: bytes) -> tuple[float, float]:
    """extractLongLatOrReply()."""
    lon = parse_score(raw_lon)
    lat = parse_score(raw_lat)
    if lon < gh.LONG_MIN or lon > gh.LONG_MAX or lat < gh.LAT_MIN or lat > gh.LAT_MAX:
        raise CommandError("ERR invalid longitude,latitude pair %f,%f" % (lon, lat))
    return lon, lat


def _unit(raw: bytes) -> float:
    """extractUnitOrReply(): meters per unit."""
    to_meters = _UNITS.get(raw.lower())
    if to_meters is None:
        raise CommandError(UNSUPPORTED_UNIT)
    return to_meters


def _distance_arg(raw: bytes, unit: bytes) -> tuple[float, float]:
    """extractDistanceOrReply(): (radius, conversion)."""
    radius = parse_score(raw, "ERR need numeric radius")
    if radius < 0:
        raise CommandError(RADIUS_NEGATIVE)
    return radius, _unit(unit)


def _box_arg(raw_w: bytes, raw_h: bytes, unit: bytes) -> tuple[float, float, float]:
    """extractBoxOrReply(): (width, height, conversion)."""
    width = parse_score(raw_w, "ERR need numeric width")
    height = parse_score(raw_h, "ERR need numeric height")
    if height < 0 or width < 0:
        raise CommandError(BOX_NEGATIVE)
    return width, height, _unit(unit)


def _zset(client, key: bytes):
    """lookupKeyRead() + checkType(OBJ_ZSET): the sorted set or None."""
    value = read_value(client, key)
    if value is not None and type(value) is not ZSet:
        raise CommandError(errors.WRONGTYPE)
    return value


def _member_lonlat(zs: ZSet, member: bytes):
    score = zs.scores.get(member)
    return None if score is None else gh.decode_score(score)


# -- reply formatting --------------------------------------------------------------------


def _human(value: float, resp: int):
    """addReplyHumanLongDouble(): "%.17Lf" without trailing zeros (ld2string HUMAN)."""
    text = b"%.17f" % value
    if b"." in text:
        text = text.rstrip(b"0").rstrip(b".")
    if text == b"-0":
        text = b"0"
    return Raw(b",%s\r\n" % text) if resp == 3 else text


def _distance_reply(value: float) -> bytes:
    """addReplyDoubleDistance(): four decimals, always a bulk string."""
    return b"%.4f" % value


# -- GEOADD / GEOPOS / GEODIST / GEOHASH -------------------------------------------------

_GEOADD_FLAGS = frozenset((b"nx", b"xx", b"ch"))


def _rewrite_geoadd(db, argv, reply):
    """geoaddCommand() runs zaddCommand() on a rewritten argv: "zadd" (lower case, as
    Redis spells it), the options as sent, then each geohash score (an integer) and
    member."""
    i = 2
    while i < len(argv) and argv[i].lower() in _GEOADD_FLAGS:
        i += 1
    out = [b"zadd", *argv[1:i]]
    for j in range(i, len(argv), 3):
        lon, lat = _lonlat(argv[j], argv[j + 1])
        bits = gh.align52(gh.encode(lon, lat, gh.GEO_STEP_MAX), gh.GEO_STEP_MAX)
        out += [b"%d" % bits, argv[j + 2]]
    return [out]


@command("geoadd", rewrite=_rewrite_geoadd)
def geoadd(client, argv):
    i, flags = 2, set()
    while i < len(argv):
        flag = argv[i].lower()
        if flag not in _GEOADD_FLAGS:
            break
        flags.add(flag)
        i += 1
    if (len(argv) - i) % 3 or (b"nx" in flags and b"xx" in flags) or i == len(argv):
        raise CommandError(errors.SYNTAX)
    items = []
    for j in range(i, len(argv), 3):
        lon, lat = _lonlat(argv[j], argv[j + 1])
        bits = gh.align52(gh.encode(lon, lat, gh.GEO_STEP_MAX), gh.GEO_STEP_MAX)
        items.append((float(bits), argv[j + 2]))
    # GEOADD is ZADD of the encoded scores (Redis rewrites the command into ZADD).
    added, updated, _, _ = _zadd_apply(client, argv[1], items, flags)
    return added + updated if b"ch" in flags else added


@command("geopos")
def geopos(client, argv):
    zs = _zset(client, argv[1])
    resp = client.resp
    out = []
    for member in argv[2:]:
        xy = _member_lonlat(zs, member) if zs is not None else None
        out.append(NULL_ARRAY if xy is None else [_human(xy[0], resp), _human(xy[1], resp)])
    return out


@command("geodist")
def geodist(client, argv):
    to_meter = 1.0
    if len(argv) == 5:
        to_meter = _unit(argv[4])
    elif len(argv) > 5:
        raise CommandError(errors.SYNTAX)
    zs = _zset(client, argv[1])
    if zs is None:
        return None
    first = _member_lonlat(zs, argv[2])
    second = _member_lonlat(zs, argv[3])
    if first is None or second is None:
        return None
    return _distance_reply(gh.distance(first[0], first[1], second[0], second[1]) / to_meter)


def _geohash_string(score: float) -> bytes:
    """The standard 11-character geohash: Redis's latitude range is +-85.05, so the
    decoded point is re-encoded over +-90 first."""
    lon, lat = gh.decode_score(score)
    bits = gh.encode(lon, lat, 26, (-180.0, 180.0), (-90.0, 90.0)) or 0
    chars = bytearray(11)
    for i in range(10):
        chars[i] = _GEOALPHABET[(bits >> (52 - (i + 1) * 5)) & 0x1f]
    chars[10] = _GEOALPHABET[0]  # 52 bits only: the 11th character assumes zeros
    return bytes(chars)


@command("geohash")
def geohash(client, argv):
    zs = _zset(client, argv[1])
    out = []
    for member in argv[2:]:
        score = zs.scores.get(member) if zs is not None else None
        out.append(None if score is None else _geohash_string(score))
    return out


# -- searches ----------------------------------------------------------------------------

RADIUS_COORDS = 1
RADIUS_MEMBER = 2
RADIUS_NOSTORE = 4
GEOSEARCH = 8
GEOSEARCHSTORE = 16

SORT_NONE, SORT_ASC, SORT_DESC = 0, 1, 2


class _Shape:
    """GeoShape: the centre, a circle (radius) or a box (width x height), the unit."""

    __slots__ = ("lon", "lat", "circle", "radius", "width", "height", "conversion")

    def __init__(self):
        self.lon = self.lat = 0.0
        self.circle = True
        self.radius = self.width = self.height = 0.0
        self.conversion = 1.0

    def boxes(self) -> list:
        conversion = self.conversion
        if self.circle:
            half_height = half_width = conversion * self.radius
            radius_meters = self.radius * conversion
        else:
            half_height = conversion * (self.height / 2)
            half_width = conversion * (self.width / 2)
            radius_meters = math.sqrt((self.width / 2) * (self.width / 2)
                                      + (self.height / 2) * (self.height / 2))
            radius_meters *= conversion
        return gh.search_boxes(self.lon, self.lat, half_height, half_width, radius_meters)

    def distance_if_inside(self, x: float, y: float):
        if self.circle:
            return gh.in_radius(self.lon, self.lat, x, y, self.radius * self.conversion)
        return gh.in_box(self.width * self.conversion, self.height * self.conversion,
                         self.lon, self.lat, x, y)


def _points(zs: ZSet, shape: _Shape, limit: int) -> list:
    """membersOfAllNeighbors(): (dist, score, member, lon, lat) of the members inside
    the shape, box by box; with a limit (COUNT ANY) it stops once it has that many."""
    found = []
    boxes = shape.boxes()
    last = 0
    for i, box in enumerate(boxes):
        if box is None:
            continue
        # Huge radii make neighbours coincide; Redis skips a box equal to the last one
        # processed (but never compares with the centre box, index 0).
        if last and box == boxes[last]:
            continue
        if found and limit and len(found) >= limit:
            break
        low, high = gh.box_score_range(*box)
        start, end = zs.score_span(ScoreRange(float(low), False, float(high), True))
        for score, member in zs.entries(start, end):
            x, y = gh.decode_score(score)
            dist = shape.distance_if_inside(x, y)
            if dist is not None:
                found.append((dist, score, member, x, y))
            if found and limit and len(found) >= limit:
                break
        last = i
    return found


def _parse_search(client, argv, src_index: int, flags: int, zs):
    """The option loop of georadiusGeneric(), with Redis's order of checks."""
    shape = _Shape()
    opts = {"withdist": False, "withhash": False, "withcoord": False, "any": False,
            "sort": SORT_NONE, "count": 0, "store": None, "storedist": False}
    if flags & RADIUS_COORDS:
        base = 6
        shape.lon, shape.lat = _lonlat(argv[2], argv[3])
        shape.radius, shape.conversion = _distance_arg(argv[4], argv[5])
    elif flags & RADIUS_MEMBER:
        base = 5
        if zs is not None:
            xy = _member_lonlat(zs, argv[2])
            if xy is None:
                raise CommandError(MEMBER_UNKNOWN)
            shape.lon, shape.lat = xy
            shape.radius, shape.conversion = _distance_arg(argv[3], argv[4])
    else:
        base = 2
        if flags & GEOSEARCHSTORE:
            base = 3
            opts["store"] = argv[1]
    frommember = fromloc = byradius = bybox = False
    remaining = len(argv) - base
    i = 0
    while i < remaining:
        arg = argv[base + i].lower()
        search = flags & GEOSEARCH
        legacy_store = not (flags & RADIUS_NOSTORE) and not search
        if arg in (b"withdist", b"withhash", b"withcoord", b"any"):
            opts[arg.decode()] = True
        elif arg == b"asc":
            opts["sort"] = SORT_ASC
        elif arg == b"desc":
            opts["sort"] = SORT_DESC
        elif arg == b"count" and i + 1 < remaining:
            count = parse_int(argv[base + i + 1])
            if count <= 0:
                raise CommandError(COUNT_POSITIVE)
            opts["count"] = count
            i += 1
        elif arg in (b"store", b"storedist") and i + 1 < remaining and legacy_store:
            opts["store"] = argv[base + i + 1]
            opts["storedist"] = arg == b"storedist"
            i += 1
        elif arg == b"storedist" and search and flags & GEOSEARCHSTORE:
            opts["storedist"] = True
        elif arg == b"frommember" and i + 1 < remaining and search and not fromloc:
            if zs is not None:
                xy = _member_lonlat(zs, argv[base + i + 1])
                if xy is None:
                    raise CommandError(MEMBER_UNKNOWN)
                shape.lon, shape.lat = xy
            frommember = True
            i += 1
        elif arg == b"fromlonlat" and i + 2 < remaining and search and not frommember:
            shape.lon, shape.lat = _lonlat(argv[base + i + 1], argv[base + i + 2])
            fromloc = True
            i += 2
        elif arg == b"byradius" and i + 2 < remaining and search and not bybox:
            shape.radius, shape.conversion = _distance_arg(argv[base + i + 1],
                                                           argv[base + i + 2])
            shape.circle = True
            byradius = True
            i += 2
        elif arg == b"bybox" and i + 3 < remaining and search and not byradius:
            shape.width, shape.height, shape.conversion = _box_arg(
                argv[base + i + 1], argv[base + i + 2], argv[base + i + 3])
            shape.circle = False
            bybox = True
            i += 3
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    name = argv[0].decode("utf-8", "replace")
    if opts["store"] is not None and (opts["withdist"] or opts["withhash"]
                                      or opts["withcoord"]):
        raise CommandError(
            "ERR %s is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
            % ("GEOSEARCHSTORE" if flags & GEOSEARCHSTORE else "STORE option in GEORADIUS"))
    if flags & GEOSEARCH and not (frommember or fromloc):
        raise CommandError(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for %s" % name)
    if flags & GEOSEARCH and not (byradius or bybox):
        raise CommandError(
            "ERR exactly one of BYRADIUS and BYBOX can be specified for %s" % name)
    if opts["any"] and not opts["count"]:
        raise CommandError(ANY_NEEDS_COUNT)
    return shape, opts


def _georadius(client, argv, src_index: int, flags: int):
    """georadiusGeneric()."""
    zs = _zset(client, argv[src_index])
    shape, opts = _parse_search(client, argv, src_index, flags, zs)
    store = opts["store"]
    db = client.db
    if zs is None:
        if store is not None:
            if store in db.data: notify(client, "del", store)  # noqa: E701
            db.delete(store)
            return 0
        return []
    count, sort = opts["count"], opts["sort"]
    if count and sort == SORT_NONE and not opts["any"]:
        sort = SORT_ASC  # the closest COUNT need sorting
    found = _points(zs, shape, count if opts["any"] else 0)
    if not found and store is None:
        return []
    returned = len(found) if not count or len(found) < count else count
    if sort != SORT_NONE:
        descending = sort == SORT_DESC
        if returned == len(found):
            # glibc's qsort is a stable merge sort for arrays this size
            found.sort(key=_by_distance, reverse=descending)
        else:
            gh.pqsort(found, _by_distance, descending, 0, returned - 1)
    found = found[:returned]
    conversion = shape.conversion
    if store is not None:
        if opts["storedist"]:
            scores = {member: dist / conversion for dist, _, member, _, _ in found}
        else:
            scores = {member: score for _, score, member, _, _ in found}
        if scores:
            db.set(store, from_scores(scores, *zset_limits(client)))
            notify_store(client, store)
        else:
            if store in db.data: notify(client, "del", store)  # noqa: E701
            db.delete(store)
        return returned
    return _search_reply(found, opts, conversion, client.resp)


def _by_distance(point):
    return point[0]


def _search_reply(found, opts, conversion: float, resp: int) -> list:
    withdist, withhash, withcoord = opts["withdist"], opts["withhash"], opts["withcoord"]
    if not (withdist or withhash or withcoord):
        return [member for _, _, member, _, _ in found]
    out = []
    for dist, score, member, x, y in found:
        item = [member]
        if withdist:
            item.append(_distance_reply(dist / conversion))
        if withhash:
            item.append(int(score))
        if withcoord:
            item.append([_human(x, resp), _human(y, resp)])
        out.append(item)
    return out


@command("georadius")
def georadius(client, argv):
    return _georadius(client, argv, 1, RADIUS_COORDS)


@command("georadiusbymember")
def georadiusbymember(client, argv):
    return _georadius(client, argv, 1, RADIUS_MEMBER)


@command("georadius_ro")
def georadius_ro(client, argv):
    return _georadius(client, argv, 1, RADIUS_COORDS | RADIUS_NOSTORE)


@command("georadiusbymember_ro")
def georadiusbymember_ro(client, argv):
    return _georadius(client, argv, 1, RADIUS_MEMBER | RADIUS_NOSTORE)


@command("geosearch")
def geosearch(client, argv):
    return _georadius(client, argv, 1, GEOSEARCH)


@command("geosearchstore")
def geosearchstore(client, argv):
    return _georadius(client, argv, 2, GEOSEARCH | GEOSEARCHSTORE)
