"""Geo commands: replies byte-identical to a real redis-server 7.0 (coordinates as Redis
prints them, distances to 4 decimals, hashes), searches returning the same members in
the same order (unsorted box order, ASC/DESC, COUNT with ties through pqsort, ANY),
stores, errors word for word, in RESP2 and RESP3; random point sets and searches are
compared by property."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vermilion.datatypes import geohash as gh


SICILY = "GEOADD Sicily 13.361389 38.115556 Palermo 15.087269 37.502669 Catania"


def test_geohash_unit_round_trip():
    bits = gh.encode(13.361389, 38.115556, 26)
    lon, lat = gh.decode_to_lonlat(bits)
    assert abs(lon - 13.361389) < 1e-5 and abs(lat - 38.115556) < 1e-5
    assert gh.deinterleave64(gh.interleave64(12345, 67890)) == 12345 | (67890 << 32)


def test_basic_replies(diff):
    diff.both_protocols(
        SICILY,
        "GEOPOS Sicily Palermo Catania missing", "GEOPOS nokey a",
        "GEODIST Sicily Palermo Catania", "GEODIST Sicily Palermo Catania km",
        "GEODIST Sicily Palermo Catania mi", "GEODIST Sicily Palermo Catania ft",
        "GEODIST Sicily Palermo missing", "GEODIST nokey a b",
        "GEOHASH Sicily Palermo Catania missing", "GEOHASH nokey a",
        "GEORADIUS Sicily 15 37 200 km WITHDIST WITHCOORD WITHHASH",
        "GEORADIUS Sicily 15 37 200 km WITHCOORD DESC",
        "GEORADIUSBYMEMBER Sicily Palermo 200 km WITHDIST ASC",
        "GEORADIUS_RO Sicily 15 37 200 km COUNT 1",
        "GEORADIUSBYMEMBER_RO Sicily Palermo 500 km COUNT 1 ANY",
        "GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km WITHCOORD WITHDIST",
        "GEOSEARCH Sicily FROMMEMBER Palermo BYBOX 400 400 km ASC WITHHASH",
        "GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX 100 100 mi",
        "GEOSEARCH nokey FROMLONLAT 15 37 BYRADIUS 1 m",
    )


def test_geoadd_options(diff):
    diff.same(SICILY,
              "GEOADD Sicily CH XX 13.361389 38.115556 Palermo 1 1 Newcomer",
              "ZRANGE Sicily 0 -1 WITHSCORES",
              "GEOADD Sicily NX 13.5 38 Palermo 2 2 Other",
              "GEOADD Sicily CH 13.5 38 Palermo",
              "ZRANGE Sicily 0 -1 WITHSCORES",
              "GEOADD Sicily NX XX 1 1 a", "GEOADD Sicily CH CH CH", "GEOADD Sicily 1 1",
              "GEOADD Sicily GT 1 1 a", "GEOADD Sicily 181 1 a", "GEOADD Sicily 1 86 a",
              "GEOADD Sicily 1e400 1 a", "GEOADD Sicily nan 1 a", "GEOADD Sicily 1 -inf a",
              "GEOADD Sicily 0x10 1 a", "GEOADD Sicily ' 1' 1 a",
              "SET str x", "GEOADD str 1 1 a", "GEOPOS str a", "GEOSEARCH str FROMLONLAT 0 0 "
              "BYRADIUS 1 km", "GEOHASH str a", "GEODIST str a b")


def test_edges_of_the_map(diff):
    diff.both_protocols(
        "GEOADD m -180 -85.05112878 a 180 85.05112878 b 0 0 c -0.0 0 d 179.9999 0 e "
        "-179.9999 0 f 0 85 g 0 -85 h",
        "GEOPOS m a b c d e f g h", "GEOHASH m a b c d e f g h",
        "GEORADIUS m 0 0 20000 km WITHCOORD", "GEORADIUS m 180 0 500 km ASC",
        "GEORADIUS m -180 0 500 km ASC", "GEORADIUS m 0 85 3000 km ASC WITHDIST",
        "GEOSEARCH m FROMLONLAT 179 0 BYBOX 500 500 km ASC",
        "GEOSEARCH m FROMLONLAT 0 0 BYRADIUS 0 m",
        "GEOSEARCH m FROMLONLAT 0 0 BYRADIUS 30000 km ASC COUNT 3",
    )


def test_forged_scores(diff):
    # Scores no GEOADD would write still decode as Redis's (uint64_t) cast does.
    diff.both_protocols(
        "ZADD w -5 a 1e300 b 4503599627370496 c 3.5 d 4503599627370495 e",
        "GEOPOS w a b c d e", "GEOHASH w a b c d e", "GEODIST w a e")


def test_ties_with_count_follow_pqsort(diff):
    points = []
    for i in range(60):
        points += ["%.4f" % (10 + (i % 7) * 0.01), "10", "p%02d" % i]
    diff.same(["GEOADD", "t", *points])
    for count in (1, 3, 8, 20, 41, 59, 60, 61):
        for order in ("ASC", "DESC"):
            diff.same(f"GEORADIUS t 10 10 100 km COUNT {count} {order}",
                      f"GEOSEARCH t FROMLONLAT 10 10 BYBOX 300 300 km COUNT {count} {order}",
                      f"GEOSEARCH t FROMLONLAT 10 10 BYRADIUS 100 km COUNT {count} ANY")


def test_store_variants(diff):
    diff.same(SICILY,
              "GEORADIUS Sicily 15 37 200 km STORE dst", "ZRANGE dst 0 -1 WITHSCORES",
              "GEORADIUS Sicily 15 37 200 km STOREDIST dst", "ZRANGE dst 0 -1 WITHSCORES",
              "OBJECT ENCODING dst",
              "GEORADIUSBYMEMBER Sicily Palermo 1 m STORE dst", "EXISTS dst",
              "GEOSEARCHSTORE dst Sicily FROMLONLAT 15 37 BYRADIUS 200 km STOREDIST",
              "ZRANGE dst 0 -1 WITHSCORES",
              "GEOSEARCHSTORE dst Sicily FROMLONLAT 15 37 BYRADIUS 200 km COUNT 1 DESC",
              "ZRANGE dst 0 -1 WITHSCORES",
              "GEOSEARCHSTORE dst nokey FROMLONLAT 15 37 BYRADIUS 200 km", "EXISTS dst",
              "SET dst x EX 100", "GEORADIUS Sicily 15 37 200 km STORE dst", "TTL dst",
              "GEORADIUS nokey 15 37 200 km STORE Sicily", "EXISTS Sicily")


def test_search_errors(diff):
    diff.same(SICILY,
              "GEORADIUS Sicily 15 37 200 km STORE d WITHDIST",
              "GEOSEARCHSTORE d Sicily FROMLONLAT 15 37 BYRADIUS 200 km WITHCOORD",
              "GEORADIUS_RO Sicily 15 37 200 km STORE d",
              "GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km STORE d",
              "GEOSEARCH Sicily BYRADIUS 200 km", "GeoSearch Sicily FROMLONLAT 15 37",
              "GEOSEARCH Sicily FROMLONLAT 15 37 FROMMEMBER Palermo BYRADIUS 1 km",
              "GEOSEARCH Sicily FROMMEMBER Palermo FROMLONLAT 15 37 BYRADIUS 1 km",
              "GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 1 km BYBOX 1 1 km",
              "GEOSEARCH Sicily FROMMEMBER nobody BYRADIUS 1 km",
              "GEOSEARCH nokey FROMMEMBER nobody BYRADIUS 1 km",
              "GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS x km",
              "GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS -1 km",
              "GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 1 parsecs",
              "GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX x 1 km",
              "GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX 1 x km",
              "GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX -1 1 km",
              "GEOSEARCH Sicily FROMLONLAT 15 200 BYBOX 1 1 km",
              "GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 1 km ANY",
              "GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 1 km COUNT 0",
              "GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 1 km COUNT x",
              "GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 1 km COUNT",
              "GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 1 km bogus",
              "GEORADIUSBYMEMBER Sicily nobody 1 km", "GEORADIUSBYMEMBER nokey x bad km",
              "GEORADIUS Sicily 15 37 x km", "GEODIST Sicily Palermo Catania km extra",
              "GEODIST Sicily Palermo Catania parsecs")


POINT = st.tuples(st.floats(-180, 180), st.floats(-85.05112878, 85.05112878))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(centre=POINT,
       offsets=st.lists(st.tuples(st.floats(-2, 2), st.floats(-2, 2)), min_size=1,
                        max_size=60),
       duplicate=st.booleans(),
       radius=st.floats(0, 3_000_000),
       unit=st.sampled_from(["m", "km", "mi", "ft"]),
       box=st.booleans(),
       options=st.lists(st.sampled_from(["ASC", "DESC", "WITHDIST", "WITHCOORD",
                                         "WITHHASH", "COUNT 5", "COUNT 17 ANY"]),
                        max_size=3, unique=True))
def test_random_searches_match_redis(diff, centre, offsets, duplicate, radius,
                                     unit, box, options):
    diff.same("DEL g dst")
    args = []
    for i, (dx, dy) in enumerate(offsets):
        lon = min(180.0, max(-180.0, centre[0] + dx))
        lat = min(85.05112878, max(-85.05112878, centre[1] + dy))
        args += [repr(lon), repr(lat), "m%d" % i]
        if duplicate:
            args += [repr(lon), repr(lat), "d%d" % i]
    diff.same(["GEOADD", "g", *args])
    conversion = {"m": 1, "km": 1000, "mi": 1609.34, "ft": 0.3048}[unit]
    size = repr(radius / conversion)
    shape = ["BYBOX", size, size, unit] if box else ["BYRADIUS", size, unit]
    flat = [word for option in options for word in option.split()]
    if "ASC" in flat and "DESC" in flat:
        flat.remove("DESC")
    lonlat = [repr(centre[0]), repr(centre[1])]
    diff.same(["GEOSEARCH", "g", "FROMLONLAT", *lonlat, *shape, *flat],
              ["GEOSEARCH", "g", "FROMMEMBER", "m0", *shape, *flat],
              ["GEORADIUS", "g", *lonlat, size, unit, *flat])
    stored = [w for w in flat if not w.startswith("WITH")]
    diff.same(
        ["GEOSEARCHSTORE", "dst", "g", "FROMLONLAT", *lonlat, *shape, *stored,
         "STOREDIST"],
        "ZRANGE dst 0 -1 WITHSCORES", "GEOPOS g m0", "GEOHASH g m0",
        "GEODIST g m0 m%d km" % (len(offsets) - 1))


def test_redis_py_view(r):
    assert r.geoadd("Sicily", (13.361389, 38.115556, "Palermo",
                               15.087269, 37.502669, "Catania")) == 2
    assert float(r.geodist("Sicily", "Palermo", "Catania", unit="km")) == 166.2742
    assert r.geohash("Sicily", "Palermo") in (["sqc8b49rny0"], [b"sqc8b49rny0"])
    pos = r.geopos("Sicily", "Palermo", "nobody")
    assert pos[1] is None and abs(float(pos[0][0]) - 13.361389) < 1e-5
    found = r.geosearch("Sicily", longitude=15, latitude=37, radius=200, unit="km",
                        sort="ASC")
    assert [m.decode() if isinstance(m, bytes) else m for m in found] == ["Catania",
                                                                          "Palermo"]


def test_extreme_radii_and_repeated_options(diff):
    diff.same("GEOADD g 0 0 a 100 50 b -170 -80 c 179 84 d 13.36 38.11 e")
    for radius in ("1e10", "1e300", "inf", "0", "19000000", "5000000", "1e-300"):
        diff.same(f"GEORADIUS g 10 10 {radius} m ASC",
                  f"GEOSEARCH g FROMLONLAT 10 10 BYBOX {radius} {radius} m ASC",
                  f"GEOSEARCH g FROMLONLAT 10 10 BYBOX {radius} 1 m DESC WITHDIST")
    diff.same("GEORADIUS g 0 0 0 m WITHDIST",
              "GEORADIUS g 0 0 20000 km COUNT 2 ANY STORE st", "ZRANGE st 0 -1 WITHSCORES",
              "GEORADIUS g 0 0 20000 km STORE st STOREDIST st2", "ZRANGE st2 0 -1 WITHSCORES",
              "GEOSEARCH g FROMLONLAT 0 0 BYRADIUS 20000 km ASC DESC COUNT 2 COUNT 3",
              "GEOSEARCH g FROMMEMBER a FROMMEMBER b BYRADIUS 20000 km ASC",
              "GEOSEARCH g FROMLONLAT 0 0 BYRADIUS 20000 km BYRADIUS 1 km ASC")


def test_same_longitude_uses_the_meridian_distance(diff):
    # Redis 7.0 skips the haversine when the longitudes' sine term is 0; the last
    # digits of the distance show which formula ran.
    points = []
    for i, lat in enumerate((-84.9, -60.123456, -1.5, 0.000001, 33.3, 77.7, 85.05)):
        points += ["179.987654", str(lat), "p%d" % i, "-180", str(lat), "q%d" % i]
    diff.same(["GEOADD", "g", *points],
              "GEODIST g p0 p5", "GEODIST g p1 p6 km", "GEODIST g q0 q3 ft",
              "GEOSEARCHSTORE d g FROMMEMBER p2 BYRADIUS 30000 km STOREDIST",
              "ZRANGE d 0 -1 WITHSCORES",
              "GEOSEARCHSTORE d g FROMMEMBER q4 BYBOX 30000 30000 km STOREDIST",
              "ZRANGE d 0 -1 WITHSCORES")
