// Remote write 1.0 from the browser test: a prometheus.WriteRequest encoded
// by hand (protobuf wire format) in a snappy block of literals only (a valid
// snappy stream that does not compress), so that the test can give the
// server a day of samples at their own timestamps without a native module.
//
//   const body = writeRequest([{ labels: { __name__: "x", job: "a" }, samples: [[t_ms, v], ...] }]);
//   await fetch(base + "/api/v1/write", { method: "POST", headers: REMOTE_WRITE_HEADERS, body });

export const REMOTE_WRITE_HEADERS = {
  "Content-Type": "application/x-protobuf",
  "Content-Encoding": "snappy",
  "X-Prometheus-Remote-Write-Version": "0.1.0",
};

class Writer {
  constructor() {
    this.parts = [];
  }
  varint(n) {
    // n is a non-negative safe integer (timestamps in ms, lengths).
    const bytes = [];
    let v = BigInt(n);
    do {
      let b = Number(v & 0x7fn);
      v >>= 7n;
      if (v) b |= 0x80;
      bytes.push(b);
    } while (v);
    this.parts.push(Uint8Array.from(bytes));
  }
  tag(field, wire) {
    this.varint((field << 3) | wire);
  }
  bytes(field, data) {
    this.tag(field, 2);
    this.varint(data.length);
    this.parts.push(data);
  }
  string(field, s) {
    this.bytes(field, new TextEncoder().encode(s));
  }
  double(field, x) {
    this.tag(field, 1);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, x, true);
    this.parts.push(b);
  }
  int64(field, n) {
    this.tag(field, 0);
    this.varint(n);
  }
  finish() {
    return Buffer.concat(this.parts.map((p) => Buffer.from(p)));
  }
}

// series: [{ labels: {name: value}, samples: [[t_ms, value], ...] }]
export function encodeWriteRequest(series) {
  const req = new Writer();
  for (const s of series) {
    const ts = new Writer();
    for (const [name, value] of Object.entries(s.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const l = new Writer();
      l.string(1, name);
      l.string(2, value);
      ts.bytes(1, l.finish());
    }
    for (const [t, v] of s.samples) {
      const p = new Writer();
      p.double(1, v);
      p.int64(2, t);
      ts.bytes(2, p.finish());
    }
    req.bytes(1, ts.finish());
  }
  return req.finish();
}

// The snappy block format: the uncompressed length as a varint, then
// literals of at most 64 KiB (tag 0xf4: 61 << 2, a two-byte length - 1).
export function snappyLiterals(data) {
  const out = new Writer();
  out.varint(data.length);
  for (let at = 0; at < data.length; at += 65536) {
    const chunk = data.subarray(at, Math.min(data.length, at + 65536));
    const n = chunk.length - 1;
    out.parts.push(Uint8Array.from([61 << 2, n & 0xff, n >> 8]));
    out.parts.push(chunk);
  }
  return out.finish();
}

export function writeRequest(series) {
  return snappyLiterals(encodeWriteRequest(series));
}
