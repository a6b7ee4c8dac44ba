#!/usr/bin/env python3
"""Writes the hand-written seeds for labels and the /updates/ envelope
(API.md Part 2, "Series: instances and labels") as
fuzz/corpus/{json_metric,json_batch,http}/series_*.

Kept apart from make_seeds.py so that either can be rerun alone; run from
anywhere: python3 fuzz/make_series_seeds.py.
"""
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, seeds):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    for i, s in enumerate(seeds):
        if isinstance(s, str):
            s = s.encode("utf-8", "surrogateescape")
        with open(os.path.join(d, "series_%03d" % i), "wb") as f:
            f.write(s)


G = '"id":"g","type":"gauge","value":1'
C = '"id":"c","type":"counter","delta":2'
MANY = ",".join('"l%d":"v"' % i for i in range(32))
TOO_MANY = ",".join('"l%d":"v"' % i for i in range(33))

LABELS = [
    '{}',
    '{"instance":"h:1","job":"agent"}',
    '{"job":""}',
    '{"a":"1","b":"2","A":"3","_":"4","a_1":"5"}',
    '{"bad-name":"v"}',
    '{"1abc":"v"}',
    '{"__name__":"v"}',
    '{"_":"ok","__":"no"}',
    '{"' + "n" * 128 + '":"v"}',
    '{"' + "n" * 129 + '":"v"}',
    '{"v":"' + "v" * 1024 + '"}',
    '{"v":"' + "v" * 1025 + '"}',
    '{"u":"\u00e9\u4e2d\U0001f600"}',
    b'{"u":"\xc3\x28"}',
    '{"u":"\\ud800"}',
    '{"u":"\\u00ff\\u0000"}',
    '{"u":"a\\"b\\\\c\\n"}',
    '{' + MANY + '}',
    '{' + TOO_MANY + '}',
    '{"n":1}',
    '{"n":null}',
    '{"n":["a"]}',
    '{"n":{"a":"b"}}',
    '{"dup":"a","dup":"b"}',
    '{"dup":"a","dup":""}',
    '[]',
    '"labels"',
    'null',
    '{"":"v"}',
]

metrics = []
for lab in LABELS:
    lab = lab.decode("utf-8", "surrogateescape") if isinstance(lab, bytes) else lab
    metrics.append('{' + G + ',"labels":' + lab + '}')
    metrics.append('{"id":"g","type":"gauge","labels":' + lab + '}')  # a value query
metrics += [
    '{' + C + ',"labels":{"instance":"h"},"labels":{"job":"j"}}',
    '{"labels":{"instance":"h"},' + C + '}',
    '{"id":"agent_up","type":"gauge","labels":{"instance":"h:1","job":"agent"}}',
    '{"id":"agent_last_push_timestamp_seconds","type":"gauge","labels":{"instance":"h:1"}}',
]
write("json_metric", metrics)

batches = []
for lab in LABELS:
    lab = lab.decode("utf-8", "surrogateescape") if isinstance(lab, bytes) else lab
    batches.append('{"labels":' + lab + ',"metrics":[{' + G + '},{' + C + '}]}')
    batches.append('[{' + G + ',"labels":' + lab + '},{' + G + '}]')
    batches.append('{"labels":{"instance":"h","job":"j"},"metrics":[{' + C + ',"labels":' + lab + '}]}')
batches += [
    '{"labels":{},"metrics":[]}',
    '{"metrics":[]}',
    '{"labels":{"instance":"h"}}',
    '{"labels":{"instance":"h"},"metrics":{}}',
    '{"labels":{"instance":"h"},"metrics":[1]}',
    '{"labels":{"instance":"h"},"metrics":[{' + G + '}],"metrics":[{' + C + '}]}',
    '{"metrics":[{' + C + '},{' + C + '},{' + C + ',"labels":{"job":"x"}},{' + C + ',"labels":{"job":""}}]}',
    '{"labels":{"job":"a"},"metrics":[{' + C + ',"labels":{"job":""}},{' + C + '}]}',
    '{"labels":{"job":"a"},"metrics":[{"id":"c","type":"counter","delta":9223372036854775807},'
    '{"id":"c","type":"counter","delta":1,"labels":{"job":"a"}}]}',
    '{"labels":{' + MANY + '},"metrics":[{' + G + ',"labels":{"extra":"1"}}]}',
    '{"labels":{' + MANY + '},"metrics":[{' + G + ',"labels":{"l0":""}}]}',
    '{"labels":{"instance":"h"},"metrics":[' + ",".join(
        '{"id":"m%d","type":"gauge","value":%d}' % (i, i) for i in range(20)) + ']}',
    '{"labels":' + '{"a":' * 70 + '"x"' + '}' * 70 + ',"metrics":[]}',
    '{"labels":{"instance":"h"},"metrics":[{' + G + '}]',
    '{"labels":{"instance":"h"},"metrics":[{' + G + '}]}junk',
]
write("json_batch", batches)


def req(method, target, body=b"", headers=()):
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogateescape")
    h = "%s %s HTTP/1.1\r\nHost: x\r\n" % (method, target)
    for k in headers:
        h += k + "\r\n"
    h += "Content-Length: %d\r\n" % len(body)
    return h.encode() + b"\r\n" + body


J = "Content-Type: application/json"
env = '{"labels":{"instance":"h:1","job":"a"},"metrics":[{' + G + '},{' + C + '}]}'
http = [
    req("POST", "/updates/", env, [J]),
    req("POST", "/updates/", env, [J]) + req("POST", "/value/",
        '{"id":"g","type":"gauge","labels":{"instance":"h:1","job":"a"}}', [J]),
    req("POST", "/update/", '{' + C + ',"labels":{"instance":"h:1","job":"a"}}', [J]),
    req("POST", "/update/", '{' + C + ',"labels":{"bad-name":"x"}}', [J]),
    req("POST", "/updates/", '{"labels":{"__x":"1"},"metrics":[{' + G + '}]}', [J]),
    req("POST", "/value/", '{"id":"g","type":"gauge","labels":{"job":"a"}}', [J]),
    req("POST", "/value/", '{"id":"g","type":"gauge","labels":{}}', [J]),
    req("POST", "/value/", '{"id":"agent_up","type":"gauge","labels":{"instance":"h:1","job":"a"}}', [J]),
    # Past the fuzz server's limits (12 series, 4 per instance): 429.
    req("POST", "/updates/", '{"labels":{"instance":"h:1"},"metrics":[' + ",".join(
        '{"id":"m%d","type":"gauge","value":1}' % i for i in range(5)) + ']}', [J]),
    req("POST", "/updates/", '[' + ",".join(
        '{"id":"m%d","type":"gauge","value":1}' % i for i in range(13)) + ']', [J]),
    req("POST", "/updates/", '{"labels":{"instance":"h:2"},"metrics":[{' + G + '}]}', [J])
    + req("POST", "/updates/", '{"labels":{"instance":"h:2"},"metrics":[{' + G + '}]}', [J]),
]
write("http", [bytes([0]) + s for s in http])
