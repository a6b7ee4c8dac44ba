#!/usr/bin/env python3
"""Writes the hand-written seed inputs of fuzz/corpus/<target>/seed_*.

Run from anywhere: python3 fuzz/make_seeds.py. Files found by libFuzzer
(named by their SHA-1) are kept beside these; rerunning only rewrites seeds.
"""
import gzip
import os
import struct
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, seeds):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    for i, s in enumerate(seeds):
        if isinstance(s, str):
            s = s.encode("utf-8", "surrogateescape")
        with open(os.path.join(d, "seed_%03d" % i), "wb") as f:
            f.write(s)


def gz(b):
    return gzip.compress(b if isinstance(b, bytes) else b.encode(), mtime=0)


METRICS = [
    '{"id":"Alloc","type":"gauge","value":120500.5}',
    '{"id":"PollCount","type":"counter","delta":5}',
    '{"id":"g","type":"gauge","value":-0.0}',
    '{"id":"g","type":"gauge","value":1e308}',
    '{"id":"g","type":"gauge","value":5e-324}',
    '{"id":"g","type":"gauge","value":1e400}',
    '{"id":"g","type":"gauge","value":NaN}',
    '{"id":"g","type":"gauge","value":"1.5"}',
    '{"id":"g","type":"gauge","value":2}',
    '{"id":"c","type":"counter","delta":9223372036854775807}',
    '{"id":"c","type":"counter","delta":9223372036854775808}',
    '{"id":"c","type":"counter","delta":-9223372036854775808}',
    '{"id":"c","type":"counter","delta":1.5}',
    '{"id":"c","type":"counter","delta":1e3}',
    '{"id":"c","type":"counter"}',
    '{"id":"c","type":"counter","delta":1,"value":2}',
    '{"id":"","type":"gauge","value":1}',
    '{"id":"a/b","type":"gauge","value":1}',
    '{"id":"\\u0000","type":"gauge","value":1}',
    '{"id":"\\ud800","type":"gauge","value":1}',
    '{"id":"\u00e9\u4e2d\U0001f600","type":"gauge","value":1}',
    b'{"id":"\xff\xfe","type":"gauge","value":1}',
    b'{"id":"\xc0\xaf","type":"gauge","value":1}',
    '{"id":"' + "n" * 255 + '","type":"gauge","value":1}',
    '{"id":"' + "n" * 256 + '","type":"gauge","value":1}',
    '{"id":"x","type":"histogram","value":1}',
    '{"id":"x","type":"Gauge","value":1}',
    '{"id":1,"type":"gauge","value":1}',
    '{"type":"gauge","value":1}',
    '{"id":"x","type":"gauge","value":1,"extra":{"a":[1,2,{"b":null}]}}',
    '{"id":"x","id":"y","type":"gauge","value":1}',
    '{"id":"x","type":"gauge","value":1',
    '{"id":"x","type":"gauge","value":1}garbage',
    '  {"id":"x","type":"gauge","value":1}  \n',
    '"just a string"',
    'null',
    '',
]

BATCHES = [
    '[]',
    '[' + ",".join(METRICS[:2]) + ']',
    '[{"id":"a","type":"counter","delta":1},{"id":"a","type":"counter","delta":2},'
    '{"id":"g","type":"gauge","value":0.5},{"id":"g","type":"gauge","value":0.25},'
    '{"id":"a","type":"gauge","value":3}]',
    '[{"id":"a","type":"counter","delta":9223372036854775807},{"id":"a","type":"counter","delta":1}]',
    '[{"id":"a","type":"counter","delta":-9223372036854775808},{"id":"a","type":"counter","delta":-1}]',
    '[{"id":"ok","type":"gauge","value":1},{"id":"bad","type":"gauge","value":"x"}]',
    '[' + ",".join('{"id":"m%d","type":"counter","delta":%d}' % (i, i) for i in range(12)) + ']',
    '[' * 100 + ']' * 100,
    '[' * 63 + ']' * 63,
    '[' * 65 + ']' * 65,
    '[{"id":"x","type":"gauge","value":1,"deep":' + '[' * 70 + ']' * 70 + '}]',
    '[1,2,3]',
    '[null]',
    '{"id":"x","type":"gauge","value":1}',
    '[{"id":"x","type":"gauge","value":1},]',
    '[{"id":"x","type":"gauge","value":1}',
    b'[{"id":"\xed\xa0\x80","type":"gauge","value":1}]',
    b'[{"id":"ok","type":"gauge","value":1}]\xff',
    '[{"id":"g","type":"gauge","value":0.1},{"id":"h","type":"gauge","value":-1.75},'
    '{"id":"i","type":"gauge","value":1e21},{"id":"j","type":"gauge","value":9223372036854775808}]',
    '[{"id":"g","type":"gauge","value":2.2250738585072014e-308},'
    '{"id":"h","type":"gauge","value":1.7976931348623157e308}]',
    '[{"id":"g","type":"gauge","value":-0}]',
    '[{"id":"g","type":"gauge","value":1E+2},{"id":"h","type":"gauge","value":-1e-7}]',
    '[{"id":"g","type":"gauge","value":01}]',
    '[{"id":"g","type":"gauge","value":.5}]',
    '[{"id":"g","type":"gauge","value":Infinity}]',
    '[{"id":"\\"quoted\\\\","type":"counter","delta":3}]',
    '[{"id":"<script>","type":"counter","delta":3}]',
] + ['[' + m + ']' for m in METRICS[:20]]

write("json_batch", BATCHES)
write("json_metric", METRICS + [
    '{"id":"PollCount","type":"counter"}',
    '{"id":"Alloc","type":"gauge"}',
    '{"id":"Alloc"}',
    '{"type":"gauge"}',
])

TEXT_TARGETS = [
    "/update/gauge/Alloc/120500.5", "/update/counter/PollCount/5", "/value/gauge/Alloc",
    "/value/counter/PollCount", "/update/gauge/", "/update/gauge/x", "/update/gauge/x/",
    "/update/gauge/x/1/extra", "/update/gauge/a%2Fb/1", "/update/gauge/%zz/1",
    "/update/gauge/%/1", "/update/gauge/x%4/1", "/update/gauge/%C3%A9/1", "/update/gauge/%FF/1",
    "/update/gauge/%00/1", "/update/gauge/x/NaN", "/update/gauge/x/inf", "/update/gauge/x/-Infinity",
    "/update/gauge/x/1e400", "/update/gauge/x/1e-400", "/update/gauge/x/0x1p3",
    "/update/gauge/x/+4", "/update/gauge/x/-0", "/update/gauge/x/1.", "/update/gauge/x/.5",
    "/update/gauge/x/1e21", "/update/gauge/x/ 1", "/update/gauge/x/1%20",
    "/update/gauge/x/9223372036854775808", "/update/counter/x/9223372036854775807",
    "/update/counter/x/9223372036854775808", "/update/counter/x/-9223372036854775808",
    "/update/counter/x/-9223372036854775809", "/update/counter/x/1.5", "/update/counter/x/+1",
    "/update/counter/x/--1", "/update/histogram/x/1", "/", "/ping", "/ping?x=1", "/update/",
    "/updates", "/value", "//", "", "*", "http://host/update/gauge/x/1",
    "/update/gauge/x/1?q=%zz", "/value/gauge/" + "n" * 300,
    "/update/gauge/x/" + "1" * 400, "/update/gauge/x/0.000000000000000000000000000001",
    "/update/gauge/x/123456789012345678901234567890",
]
METHODS = {"get": 2, "post": 4, "put": 5, "delete": 1, "head": 3}
text = []
for i, t in enumerate(TEXT_TARGETS):
    m = METHODS["post"] if t.startswith("/update") else METHODS["get"]
    if i % 7 == 3:
        m = METHODS["put"]
    text.append(bytes([m]) + t.encode())
text.append(bytes([2]) + struct.pack("<d", 0.1) + struct.pack("<d", 2.0**63) + struct.pack("<d", -5e-324))
text.append(bytes([2]) + struct.pack("<d", 1e21) + struct.pack("<d", 1e22) + struct.pack("<d", 123456.789e-20))
write("text", text)

# gzip: 2 bytes limit (little-endian, & 0xfff), 1 byte level, data.
def gzseed(limit, data, level=6):
    return struct.pack("<H", limit) + bytes([level - 1]) + data
payload = b'[{"id":"a","type":"counter","delta":1}]'
big = gz(b"\0" * 100000)
gzs = [
    gzseed(4095, gz(payload)), gzseed(10, gz(payload)), gzseed(len(payload), gz(payload)),
    gzseed(4095, gz(payload)[:-1]), gzseed(4095, gz(payload)[:-8]), gzseed(4095, gz(payload)[:10]),
    gzseed(4095, gz(payload) + b"junk"), gzseed(4095, gz(payload) + gz(payload)),
    gzseed(4095, gz(b"")), gzseed(0, gz(b"")), gzseed(0, gz(b"x")), gzseed(4095, big),
    gzseed(4095, b"\x1f\x8b"), gzseed(4095, b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"),
    gzseed(4095, zlib.compress(payload)), gzseed(4095, payload),
    gzseed(4095, b"\x1f\x8b\x08\x1f" + gz(payload)[4:]),  # every FLG bit set
    gzseed(4095, b"\x1f\x8b\x09" + gz(payload)[3:]),  # unknown method
    gzseed(4095, gz(payload)[:-4] + b"\xff\xff\xff\xff"),  # wrong length
    gzseed(4095, gz(payload)[:-8] + b"\0\0\0\0" + gz(payload)[-4:]),  # wrong crc
    gzseed(4095, b""), gzseed(4095, b"hello world", 1), gzseed(4095, bytes(range(256)), 9),
    gzseed(100, gz(b"a" * 101)), gzseed(100, gz(b"a" * 100)), gzseed(4095, gz(gz(payload))),
]
write("gzip", gzs)

CFG = [
    "", "-a\n127.0.0.1:0", "-a=:8080", "--a\n:8080", "-i\n0", "-i\n10s", "-i\n-1", "-i\n1h30m",
    "-i\n1e9h", "-i\n99999999999999999999", "-r\nfalse", "-r=maybe", "-r", "--threads\n300",
    "--threads\n-1", "--max-body-bytes\n0", "--max-body-bytes\n18446744073709551616",
    "--max-header-bytes\n4294967296", "--read-timeout\n0", "--read-timeout\n1ns",
    "--read-timeout\n9223372036854775807ns", "--log-level\nverbose", "--unknown", "-h",
    "ADDRESS=:1\nSTORE_INTERVAL=5\nRESTORE=false", "STORE_INTERVAL=junk", "KEY=",
    "-c\n@FILE\n--file--\n{\"address\":\"localhost:1\",\"store_interval\":\"10s\",\"restore\":true}",
    "-c\n@FILE\n--file--\n{\"adress\":\"x\"}", "-c\n@FILE\n--file--\n[1,2]",
    "-c\n@FILE\n--file--\n{\"store_interval\":{\"a\":1}}", "-c\n@FILE\n--file--\n{\"threads\":1e300}",
    "-c\n@FILE\n--file--\n{\"threads\":-1}", "-c\n@FILE\n--file--\n" + "[" * 100,
    "CONFIG=@FILE\n--file--\n{\"restore\":\"yes\"}", "-c\n@FILE\n--file--\n",
    "-c\nmissing.json", "-d\npostgres://x\n-f\ndb.json", "-k\nsecret\n-k\nother",
    "--shutdown-timeout\n1m\n--max-connections\n0", "--max-batch\n1\n--access-log=false",
    "-a\n[::1]:8080", "-a\nhost:99999", "-a\nnoport", "--tls-cert\nc.pem",
]
write("config", CFG)

def req(method, target, body=b"", headers=(), version="1.1", cl=True):
    if isinstance(body, str):
        body = body.encode()
    h = "%s %s HTTP/%s\r\nHost: x\r\n" % (method, target, version)
    for k in headers:
        h += k + "\r\n"
    if cl and (body or method == "POST"):
        h += "Content-Length: %d\r\n" % len(body)
    return h.encode() + b"\r\n" + body

J = "Content-Type: application/json"
batch = BATCHES[2].encode()
HTTP = [
    req("GET", "/ping"), req("GET", "/"), req("POST", "/update/gauge/Alloc/1.5"),
    req("POST", "/update/counter/c/10"), req("POST", "/update/counter/n/-10"),
    req("GET", "/value/gauge/g"), req("GET", "/value/counter/missing"),
    req("POST", "/update/", METRICS[0], [J]), req("POST", "/value/", '{"id":"g","type":"gauge"}', [J]),
    req("POST", "/updates/", batch, [J]), req("POST", "/updates/", batch, ["Content-Type: text/plain"]),
    req("POST", "/updates/", gz(batch), [J, "Content-Encoding: gzip", "Accept-Encoding: gzip"]),
    req("POST", "/updates/", gz(batch)[:-3], [J, "Content-Encoding: gzip"]),
    req("POST", "/updates/", gz(b" " * 70000), [J, "Content-Encoding: gzip"]),
    req("POST", "/updates/", batch, [J, "Content-Encoding: br"]),
    req("POST", "/updates/", '[{"id":"c","type":"counter","delta":10}]', [J]),
    req("POST", "/updates/", '[{"id":"x","type":"counter","delta":1},{"id":"c","type":"counter","delta":10}]', [J]),
    req("POST", "/updates/", "[" * 100000, [J]),
    req("GET", "/update/gauge/x/1"), req("DELETE", "/ping"), req("GET", "/nope"),
    req("GET", "/ping", headers=["Connection: close"]), req("GET", "/ping", version="1.0"),
    req("POST", "/updates/", batch, [J, "Transfer-Encoding: chunked"], cl=False)[:-len(batch)]
    + b"%x\r\n" % len(batch) + batch + b"\r\n0\r\n\r\n",
    req("POST", "/updates/", b"", [J, "Transfer-Encoding: chunked"], cl=False) + b"zz\r\n",
    req("POST", "/updates/", b"", [J, "Expect: 100-continue"]),
    req("GET", "/ping") + req("POST", "/update/gauge/a/1") + req("GET", "/value/gauge/a"),
    req("GET", "/ping") + b"\x00\x01\x02garbage\r\n\r\n",
    req("GET", "/ping", headers=["X-%d: %d" % (i, i) for i in range(300)]),
    req("GET", "/ping", headers=["X: " + "a" * 9000]),
    b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
    b"GET /ping HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    b"POST /update/ HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    b"POST /update/ HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
    req("POST", "/update/gauge/x/1", headers=["HashSHA256: 00"]),
    req("POST", "/update/gauge/%C3%28/1"), req("POST", "/update/gauge/x/NaN"),
    req("POST", "/update/", b'{"id":"\xff","type":"gauge","value":1}', [J]),
    req("POST", "/update/", '{"id":"x","type":"gauge","value":1e400}', [J]),
    req("GET", "/ping", headers=["Accept-Encoding: gzip;q=0, *"]),
]
write("http", [bytes([i % 2 if i % 5 == 0 else 0]) + s for i, s in enumerate(HTTP)])

# file_format: mode byte, 8-byte log id, content.
LOG_ID = 0x0123456789ABCDEF

def crc_of(log_id, data):
    return zlib.crc32(data, zlib.crc32(struct.pack("<Q", log_id))) & 0xffffffff

def record(log_id, seq, metrics):
    payload = struct.pack("<I", len(metrics))
    for t, name, bits in metrics:
        n = name.encode()
        payload += bytes([t]) + struct.pack("<H", len(n)) + n + struct.pack("<Q", bits)
    body = struct.pack("<Q", seq) + payload
    return struct.pack("<II", len(payload), crc_of(log_id, body)) + body

def dbl(v):
    return struct.unpack("<Q", struct.pack("<d", v))[0]

def ff(mode, content, log_id=LOG_ID):
    if isinstance(content, str):
        content = content.encode("latin-1")
    return bytes([mode]) + struct.pack("<Q", log_id) + content

snap = ('{"format":"metrics-snapshot","version":1,"log_id":"%016x","seq":1,"metrics":[\n'
        '{"id":"Alloc","type":"gauge","value":1.5},\n{"id":"P","type":"counter","delta":5}\n]}\n' % LOG_ID)
recs = record(LOG_ID, 2, [(0, "Alloc", dbl(2.5)), (1, "P", 7)]) + record(LOG_ID, 3, [(1, "Q", 1)])
header = b"MTRCWAL1" + struct.pack("<Q", LOG_ID)
FILES = [
    ff(0, snap), ff(0, '[{"id":"a","type":"gauge","value":1}]'), ff(0, "[]"), ff(0, "{}"),
    ff(0, '{"format":"metrics-snapshot","version":2,"metrics":[]}'),
    ff(0, '{"format":"metrics-snapshot","version":1,"metrics":[]}'),
    ff(0, '{"format":"metrics-snapshot","version":1,"log_id":"zz","seq":1,"metrics":[]}'),
    ff(0, '{"format":"metrics-snapshot","version":1,"log_id":"1","seq":-1,"metrics":[]}'),
    ff(0, '{"format":"metrics-snapshot","version":1,"log_id":"10000000000000000","seq":1,"metrics":[]}'),
    ff(0, '[{"id":"a","type":"gauge","value":-0.0},{"id":"b","type":"gauge","value":5e-324}]'),
    ff(0, '[{"id":"a","type":"counter","delta":1.5}]'), ff(0, '[{"id":"","type":"gauge","value":1}]'),
    ff(0, snap[:40]), ff(0, b"\xff\xfe"), ff(0, "[" * 200),
    ff(1, recs), ff(1, recs[:-3]), ff(1, recs + b"\0" * 64), ff(1, recs + b"\x01"),
    ff(1, record(LOG_ID, 5, []) + record(LOG_ID, 4, [(1, "late", 1)])),
    ff(1, record(LOG_ID + 1, 2, [(1, "other", 1)])),
    ff(2, record(LOG_ID, 2, [(2, "badtype", 1)])), ff(2, record(LOG_ID, 2, [(0, "nan", 0x7ff8000000000001)])),
    ff(2, header + recs), ff(2, header[:5]), ff(2, b"NOTAWAL!" + b"\0" * 8),
    ff(1, struct.pack("<II", 0xffffffff, 0) + b"\0" * 8),
    ff(3, snap), ff(3, snap + "\n--wal--\n" + (header + recs).decode("latin-1")),
    ff(3, snap + "\n--wal--\n" + (header + recs[:-1]).decode("latin-1")),
    ff(3, snap + "\n--wal--\n" + "MTRC"), ff(3, snap + "\n--wal--\n" + "JUNKJUNKJUNKJUNK"),
    ff(3, "not json"), ff(3, ""), ff(3, '[{"id":"a","type":"gauge","value":1}]'),
]

# Version 2 (series): records of removal (2), classic (1) and series (0)
# entries; labels as their canonical encoding (name 0xFF value 0xFF ...).
def labels(*pairs):
    return b"".join(n.encode() + b"\xff" + v.encode() + b"\xff" for n, v in pairs)

def record2(log_id, seq, entries):
    payload = struct.pack("<I", len(entries))
    for e in entries:
        kind, t, name = e[0], e[1], e[2].encode()
        payload += bytes([kind, t]) + struct.pack("<H", len(name)) + name
        if kind != 1:
            payload += struct.pack("<I", len(e[3])) + e[3]
        if kind == 1:
            payload += struct.pack("<Q", e[3])
        if kind == 0:
            payload += struct.pack("<Qq", e[4], e[5])
    body = struct.pack("<Q", seq) + payload
    return struct.pack("<II", len(payload), crc_of(log_id, body)) + body

JOB_A = labels(("instance", "a:1"), ("job", "agent"))
snap2 = ('{"format":"metrics-snapshot","version":2,"log_id":"%016x","seq":1,"metrics":[\n'
         '{"id":"Alloc","type":"gauge","value":1.5},\n{"id":"P","type":"counter","delta":5}\n],"series":[\n'
         '{"id":"Alloc","type":"gauge","value":1.5,"labels":{},"timestamp_ms":0},\n'
         '{"id":"P","type":"counter","delta":5,"labels":{"instance":"a:1","job":"agent"},"timestamp_ms":1700000000000}\n]}\n'
         % LOG_ID)
recs2 = (record2(LOG_ID, 2, [(1, 0, "Alloc", dbl(2.5)), (0, 0, "Alloc", b"", dbl(2.5), 5),
                             (1, 1, "P", 7), (0, 1, "P", JOB_A, 2, 6)])
         + record2(LOG_ID, 3, [(2, 1, "P", JOB_A), (2, 0, "gone", b""), (1, 1, "Q", 1),
                               (0, 1, "Q", labels(("v", "\u00e9 \"q\"")), 1, 7)]))
header2 = b"MTRCWAL2" + struct.pack("<Q", LOG_ID)
FILES += [
    ff(0, snap2), ff(0, snap2[:60]),
    ff(0, '{"format":"metrics-snapshot","version":2,"metrics":[],"series":[]}'),
    ff(0, '{"format":"metrics-snapshot","version":2,"metrics":[],"series":[{"id":"a","type":"gauge","value":1,"labels":{"__r":"x"},"timestamp_ms":1}]}'),
    ff(0, '{"format":"metrics-snapshot","version":2,"metrics":[],"series":[{"id":"a","type":"counter","delta":1,"labels":{"b":"1","a":"2"},"timestamp_ms":-1}]}'),
    ff(0, '{"format":"metrics-snapshot","version":3,"metrics":[],"series":[]}'),
    ff(2, header2 + recs2), ff(2, header2 + recs2[:-5]), ff(2, header2 + recs2 + b"\0" * 32),
    ff(2, recs2), ff(2, header2[:12]),
    ff(2, header2 + record2(LOG_ID, 2, [(0, 1, "bad", b"b\xff1\xffa\xff2\xff", 1, 1)])),
    ff(2, header2 + record2(LOG_ID, 2, [(0, 1, "bad", b"novalue", 1, 1)])),
    ff(2, header2 + record2(LOG_ID, 2, [(3, 1, "kind", b"", 1, 1)])),
    ff(3, snap2 + "\n--wal--\n" + (header2 + recs2).decode("latin-1")),
    ff(3, snap2 + "\n--wal--\n" + (header2 + recs2[:-2]).decode("latin-1")),
    ff(3, snap + "\n--wal--\n" + (header2 + recs2).decode("latin-1")),
]
write("file_format", [f if isinstance(f, bytes) else f.encode("latin-1") for f in FILES])


# history_chunk: a Python copy of the chunk writer (src/history/src/chunk.cpp)
# for mode-0 seeds (valid chunks, then truncated and flipped ones), and raw
# samples for mode 1.
M64 = (1 << 64) - 1
TIME_BUCKETS = [(0, 0), (2, 1), (4, 5), (9, 21), (20, 533), (64, 0)]
COUNTER_BUCKETS = [(0, 0), (4, 1), (8, 17), (16, 273), (32, 65809), (64, 0)]


def zigzag(v):
    v &= M64
    sign = M64 if v >> 63 else 0
    return ((v << 1) & M64) ^ sign


class Bits:
    def __init__(self):
        self.bits = []

    def put(self, value, n):
        for i in range(n - 1, -1, -1):
            self.bits.append((value >> i) & 1)

    def bytes(self):
        b = self.bits + [0] * (-len(self.bits) % 8)
        return bytes(int("".join(map(str, b[i:i + 8])), 2) for i in range(0, len(b), 8))


def to_signed(v):
    v &= M64
    return v - (1 << 64) if v >> 63 else v


def predict_interval(prev_dt):
    d = to_signed(prev_dt)
    q = abs(d) // 10 * (1 if d >= 0 else -1)   # truncating, as C++ does
    r = d - q * 10
    p = q * 10
    if r >= 5:
        p += 10
    if r <= -5:
        p -= 10
    return p & M64


def to_fixed(bits):
    if bits == 1 << 63:
        return None
    d = struct.unpack("<d", struct.pack("<Q", bits))[0]
    if d != d or abs(d) == float("inf"):
        return None
    q = d * 4
    if abs(q) > 2 ** 53 or q != int(q):
        return None
    return int(q)


def dod_cost(buckets, zz):
    if zz == 0:
        return 1
    for i in range(1, len(buckets) - 1):
        width, base = buckets[i]
        if 0 <= zz - base < (1 << width):
            return i + 1 + width
    return len(buckets) - 1 + 64


def put_dod(w, buckets, dod):
    zz = zigzag(dod)
    if zz == 0:
        w.put(0, 1)
        return
    for i in range(1, len(buckets) - 1):
        width, base = buckets[i]
        if 0 <= zz - base < (1 << width):
            w.put(((1 << i) - 1) << 1, i + 1)
            w.put(zz - base, width)
            return
    w.put((1 << (len(buckets) - 1)) - 1, len(buckets) - 1)
    w.put(zz, 64)


def encode_chunk(counter, samples):
    w = Bits()
    prev_t = prev_dt = prev_v = prev_dv = 0
    lead_w, trail_w = None, 0
    for n, (t, v) in enumerate(samples):
        t &= M64
        v &= M64
        if n == 0:
            zz = zigzag(t)
            nb = max(1, zz.bit_length())
            w.put(nb - 1, 6)
            w.put(zz, nb)
            prev_dt = 0
        else:
            dt = (t - prev_t) & M64
            put_dod(w, TIME_BUCKETS, (dt - predict_interval(prev_dt)) & M64)
            prev_dt = dt
        prev_t = t
        if counter:
            dv = (v - prev_v) & M64
            put_dod(w, COUNTER_BUCKETS, (dv - prev_dv) & M64)
            prev_dv = dv
        else:
            x = v ^ prev_v
            kp = to_fixed(prev_v) if n > 0 else None
            k = to_fixed(v) if kp is not None else None
            fixed = kp is not None and k is not None
            if x == 0:
                w.put(0, 1)
            else:
                lead = min(31, 64 - x.bit_length())
                trail = (x & -x).bit_length() - 1
                reuse = lead_w is not None and lead >= lead_w and trail >= trail_w
                xor_cost = 3 + 64 - lead_w - trail_w if reuse else 3 + 11 + 64 - lead - trail
                dod = (k - kp - prev_dv) & M64 if fixed else 0
                if fixed and 2 + dod_cost(COUNTER_BUCKETS, zigzag(dod)) <= xor_cost:
                    w.put(0b10, 2)
                    put_dod(w, COUNTER_BUCKETS, dod)
                elif reuse:
                    w.put(0b110, 3)
                    w.put(x >> trail_w, 64 - lead_w - trail_w)
                else:
                    sig = 64 - lead - trail
                    w.put(0b111, 3)
                    w.put(lead, 5)
                    w.put(sig & 63, 6)
                    w.put(x >> trail, sig)
                    lead_w, trail_w = lead, trail
            prev_dv = (k - kp) & M64 if fixed else 0
        prev_v = v
    return w.bytes()


def dbits(d):
    return struct.unpack("<Q", struct.pack("<d", d))[0]


T0 = 1764000000000
CHUNK_CASES = [
    (False, [(T0 + i * 10000, dbits(42.0)) for i in range(120)]),
    (True, [(T0 + i * 10000 + (i * 7) % 3, 5 * i) for i in range(120)]),
    (False, [(T0 + i * 10000 + i % 2, dbits(1.5e6 + 16 * ((i * 37) % 101))) for i in range(60)]),
    (False, [(0, dbits(-0.0)), (0, dbits(5e-324)), (-1, 0x7ff0000000000001),
             (M64 >> 1, 0xfff123456789abcd), (1 << 63, dbits(float("inf"))), (5, dbits(-1e308))]),
    (True, [(0, M64 >> 1), (0, (M64 >> 1) - 1), (-1000, 1 << 63), (-2000, 0), (7, M64), (7, 3)]),
    (True, [(T0 + i * 10000, (i * (i + 1) // 2) * 3) for i in range(40)]),
    (False, [(T0, 0)]),
    (True, [(T0, 0)]),
]
hist = []
for counter, samples in CHUNK_CASES:
    body = encode_chunk(counter, samples)
    head = bytes([1 if counter else 0]) + struct.pack("<H", len(samples))
    hist.append(head + body)
    hist.append(head + body[: len(body) // 2])                       # truncated
    flipped = bytearray(body)
    flipped[len(flipped) // 3] ^= 0x5a
    hist.append(head + bytes(flipped))                               # corrupted
    hist.append(bytes([1 if counter else 0]) + struct.pack("<H", len(samples) + 3) + body)
    # The same chunk as a disk record (type, varint count, varint length).
    def varint(v):
        out = b""
        while v >= 0x80:
            out += bytes([(v & 0x7f) | 0x80])
            v >>= 7
        return out + bytes([v])
    hist.append(bytes([1 if counter else 0]) + bytes([1 if counter else 0]) +
                varint(len(samples)) + varint(len(body)) + body)
for counter, samples in CHUNK_CASES[:6]:
    hist.append(bytes([2 | (1 if counter else 0)]) +
                b"".join(struct.pack("<QQ", t & M64, v & M64) for t, v in samples))
hist += [b"", b"\0", b"\0\xff\xff" + b"\xff" * 32, b"\x01\x05\x00" + b"\x00" * 3, b"\x02" + b"\x00" * 15]


# History dir mode (byte 0 bit 2; bit 3 checkpoint; bit 4 adds the magic):
# segments and checkpoints of real records (src/history/src/disk.cpp).
def crc32c(data):
    c = 0xffffffff
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ 0x82f63b78 if c & 1 else c >> 1
    return c ^ 0xffffffff


def varint(v):
    out = b""
    while v >= 0x80:
        out += bytes([(v & 0x7f) | 0x80])
        v >>= 7
    return out + bytes([v])


def dir_record(kind, ref, seq, counter, name, samples):
    body = encode_chunk(counter, samples)
    t = 1 if counter else 0
    payload = (bytes([kind]) + struct.pack("<QI", ref, seq) + bytes([t]) + varint(len(name)) +
               name + varint(0) + bytes([t]) + varint(len(samples)) + varint(len(body)) + body)
    return struct.pack("<II", len(payload), crc32c(payload)) + payload


segment = b"".join(dir_record(1, ref, seq, counter, name, samples)
                   for ref, (counter, samples), name, seq in
                   [(1, CHUNK_CASES[0], b"Alloc", 0), (2, CHUNK_CASES[1], b"PollCount", 0),
                    (1, CHUNK_CASES[2], b"Alloc", 1), (3, CHUNK_CASES[4], b"c", 0)])
checkpoint = (dir_record(2, 1, 2, False, b"Alloc", CHUNK_CASES[6][1]) +
              dir_record(2, 2, 1, True, b"PollCount", CHUNK_CASES[7][1]))
hist += [
    bytes([4 | 16]) + segment,
    bytes([4 | 16]) + segment[:-5],
    bytes([4 | 16]) + segment[:40] + bytes([segment[40] ^ 1]) + segment[41:],
    bytes([4 | 16]) + segment + segment,
    bytes([4]) + b"MHIST\0\0\2" + segment,
    bytes([4]) + segment,
    bytes([4 | 8 | 16]) + checkpoint,
    bytes([4 | 8 | 16]) + checkpoint[:-1],
    bytes([4 | 8 | 16]) + struct.pack("<II", 0xffffffff, 0),
    bytes([4 | 16]) + dir_record(3, 1, 0, False, b"x", CHUNK_CASES[0][1]),
]
write("history_chunk", hist)
