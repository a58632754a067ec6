/** The fault suite's proxy (test/helpers/fault-proxy.ts) against a tiny local HTTP server: each fault kind happens, the rest passes through unchanged. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { seededRandom, startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';

/** Deterministic content of `n` bytes. */
function content(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) & 0xff;
  return b;
}

interface Seen {
  method: string;
  url: string;
  rawHeaders: string[];
  bodySha1: string;
  bodyBytes: number;
}

/** GET /bytes/N: N bytes with a Content-Length; GET /chunked: 3 chunks, no length; /empty/…: no body; anything else: echo as JSON. */
async function startOrigin(): Promise<{ url: string; seen: Seen[]; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const hash = createHash('sha1');
    let bytes = 0;
    req.on('data', (d: Buffer) => {
      hash.update(d);
      bytes += d.length;
    });
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, rawHeaders: req.rawHeaders, bodySha1: hash.digest('hex'), bodyBytes: bytes });
      const m = /^\/bytes\/(\d+)$/.exec(req.url!);
      if (m && (req.method === 'GET' || req.method === 'HEAD')) {
        const body = content(Number(m[1]));
        res.writeHead(200, { 'Content-Length': String(body.length), 'X-Amz-Meta-Sha256': 'abc', ETag: '"e1"' });
        res.end(req.method === 'HEAD' ? undefined : body);
        return;
      }
      if (req.url === '/chunked') {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.write('first chunk;');
        setTimeout(() => {
          res.write('second chunk;');
          res.end('third chunk');
        }, 20);
        return;
      }
      if (req.url!.startsWith('/empty/')) {
        // As S3 answers a PUT: headers only.
        res.writeHead(200, { ETag: '"e2"', 'Content-Length': '0' });
        res.end();
        return;
      }
      const body = Buffer.from(JSON.stringify(seen[seen.length - 1]));
      res.writeHead(201, 'Made', { 'Content-Type': 'application/json', 'Content-Length': String(body.length), 'x-amz-request-id': 'origin-1' });
      res.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

interface Reply {
  status?: number;
  statusMessage?: string;
  rawHeaders?: string[];
  headers?: http.IncomingHttpHeaders;
  body: Buffer;
  /** Set when the exchange failed (before or after the headers). */
  error?: string;
  ms: number;
}

/** One request on a fresh connection; never rejects (a failure is in `error`). */
function request(base: string, method: string, path: string, opts: { headers?: Record<string, string>; body?: Buffer } = {}): Promise<Reply> {
  const started = Date.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let reply: Omit<Reply, 'body' | 'ms'> = {};
    let done = false;
    const finish = (error?: string) => {
      if (done) return;
      done = true;
      resolve({ ...reply, body: Buffer.concat(chunks), ...(error ? { error } : {}), ms: Date.now() - started });
    };
    const req = http.request(`${base}${path}`, { method, headers: opts.headers ?? {}, agent: false }, (res) => {
      reply = { status: res.statusCode!, statusMessage: res.statusMessage!, rawHeaders: res.rawHeaders, headers: res.headers };
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => finish());
      res.on('error', (e: NodeJS.ErrnoException) => finish(e.code ?? e.message));
      res.on('aborted', () => finish('aborted'));
    });
    req.on('error', (e: NodeJS.ErrnoException) => finish(e.code ?? e.message));
    req.end(opts.body);
  });
}

/** Header pairs as sent, lower-cased names, without the hop-by-hop ones. */
function pairs(raw: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (!['connection', 'keep-alive'].includes(raw[i]!.toLowerCase())) out.push(`${raw[i]}: ${raw[i + 1]}`);
  return out;
}

describe('fault proxy (test helper)', function () {
  let origin: Awaited<ReturnType<typeof startOrigin>>;
  let proxy: FaultProxy;

  beforeEach(async () => {
    origin = await startOrigin();
    proxy = await startFaultProxy({ target: origin.url });
  });
  afterEach(async () => {
    await proxy.close();
    await origin.close();
  });

  it('without faults, passes requests and responses through unchanged: Host as the client sent it, every header, bodies both ways', async () => {
    const body = content(300_000);
    const headers = {
      Host: `127.0.0.1:${proxy.port}`,
      'X-Amz-Date': '20250101T000000Z',
      'x-amz-content-sha256': createHash('sha256').update(body).digest('hex'),
      Authorization: 'AWS4-HMAC-SHA256 Credential=k/20250101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=00',
      'Content-Type': 'application/octet-stream',
      'Content-Length': String(body.length),
    };
    const put = await request(proxy.url, 'PUT', '/bucket/key?partNumber=1&uploadId=u%2B1', { headers, body });
    assert.equal(put.error, undefined);
    assert.equal(put.status, 201);
    assert.equal(put.statusMessage, 'Made');
    assert.equal(put.headers!['x-amz-request-id'], 'origin-1');
    const seen = origin.seen[0]!;
    assert.equal(seen.url, '/bucket/key?partNumber=1&uploadId=u%2B1', 'path and query untouched');
    assert.deepEqual(
      pairs(seen.rawHeaders),
      Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
      'the same headers, same case, same order, Host included',
    );
    assert.equal(seen.bodyBytes, body.length);
    assert.equal(seen.bodySha1, createHash('sha1').update(body).digest('hex'));

    const get = await request(proxy.url, 'GET', '/bytes/1000000');
    assert.equal(get.error, undefined);
    assert.equal(get.headers!['content-length'], '1000000');
    assert.equal(get.headers!['x-amz-meta-sha256'], 'abc');
    assert.ok(get.body.equals(content(1_000_000)));
    const chunked = await request(proxy.url, 'GET', '/chunked');
    assert.equal(chunked.body.toString(), 'first chunk;second chunk;third chunk');
    const head = await request(proxy.url, 'HEAD', '/bytes/77');
    assert.equal(head.headers!['content-length'], '77');
    assert.equal(head.body.length, 0);
    assert.equal(proxy.injected(), 0);
    assert.equal(proxy.stats.forwarded, 4);
    assert.deepEqual(proxy.stats.byMethod, { PUT: 1, GET: 2, HEAD: 1 }, 'requests counted by method');
  });

  it('latencyMs delays every request', async () => {
    proxy.setFaults({ latencyMs: 150 });
    const r = await request(proxy.url, 'GET', '/bytes/10');
    assert.equal(r.status, 200);
    assert.ok(r.ms >= 145, `took ${r.ms} ms`);
    assert.equal(proxy.stats.delayed, 1);
  });

  it('errorRate answers with an S3 XML error (503 SlowDown, 500 InternalError); the origin never sees the request', async () => {
    proxy.setFaults({ errorRate: 1 });
    const slow = await request(proxy.url, 'PUT', '/bucket/a/b', { body: content(50_000), headers: { 'Content-Length': '50000' } });
    assert.equal(slow.status, 503);
    assert.equal(slow.headers!['content-type'], 'application/xml');
    assert.match(
      slow.body.toString(),
      /^<\?xml version="1.0" encoding="UTF-8"\?>\n<Error><Code>SlowDown<\/Code><Message>[^<]+<\/Message><Resource>\/bucket\/a\/b<\/Resource><RequestId>[^<]+<\/RequestId><\/Error>$/,
    );
    proxy.setFaults({ errorRate: 1, errorStatus: 500 });
    const internal = await request(proxy.url, 'GET', '/bytes/10');
    assert.equal(internal.status, 500);
    assert.match(internal.body.toString(), /<Code>InternalError<\/Code>/);
    assert.equal(origin.seen.length, 0);
    assert.equal(proxy.stats.errors, 2);
    assert.deepEqual(
      proxy.stats.events.map((e) => `${e.kind} ${e.method} ${e.url}`),
      ['error PUT /bucket/a/b', 'error GET /bytes/10'],
    );
  });

  it('resetRate: the origin answers, the client connection is reset (mid-body when there is one, else before the headers)', async () => {
    proxy.setFaults({ resetRate: 1 });
    const get = await request(proxy.url, 'GET', '/bytes/1000000');
    assert.ok(get.error, 'the download failed');
    assert.ok(get.body.length < 1_000_000, `got ${get.body.length} bytes`);
    const put = await request(proxy.url, 'PUT', '/empty/x', { body: content(1000), headers: { 'Content-Length': '1000' } });
    assert.equal(put.status, undefined, 'no response at all');
    assert.equal(put.error, 'ECONNRESET');
    assert.equal(origin.seen.length, 2, 'the origin did the work both times');
    assert.equal(origin.seen[1]!.bodyBytes, 1000);
    assert.equal(proxy.stats.resets, 2);
  });

  it('truncateRate: full Content-Length in the headers, half of the body, then the connection closes', async () => {
    proxy.setFaults({ truncateRate: 1 });
    const get = await request(proxy.url, 'GET', '/bytes/1000000');
    assert.equal(get.status, 200);
    assert.equal(get.headers!['content-length'], '1000000');
    assert.equal(get.body.length, 500_000);
    assert.ok(get.body.equals(content(1_000_000).subarray(0, 500_000)), 'what came is the start of the real body');
    assert.ok(get.error, 'the client notices the premature end');
    const chunked = await request(proxy.url, 'GET', '/chunked');
    assert.equal(chunked.body.toString(), 'first chunk;');
    assert.ok(chunked.error);
    // A response without a body cannot be truncated: it passes, uncounted.
    const head = await request(proxy.url, 'HEAD', '/bytes/10');
    assert.equal(head.error, undefined);
    assert.equal(proxy.stats.truncations, 2);
  });

  it('corruptRate: the whole body, same length, one byte changed', async () => {
    proxy.setFaults({ corruptRate: 1 });
    const get = await request(proxy.url, 'GET', '/bytes/100000');
    assert.equal(get.error, undefined);
    assert.equal(get.body.length, 100_000);
    const real = content(100_000);
    const diff = [...get.body.keys()].filter((i) => get.body[i] !== real[i]);
    assert.deepEqual(diff, [50_000]);
    assert.equal(proxy.stats.corruptions, 1);
  });

  it('stallRate: half of the body, a pause of stallMs, then the rest, unchanged', async () => {
    proxy.setFaults({ stallRate: 1, stallMs: 400 });
    const started = Date.now();
    let halfAt = 0;
    const r = await new Promise<{ body: Buffer; ms: number }>((resolve, reject) => {
      http.get(`${proxy.url}/bytes/2000000`, { agent: false }, (res) => {
        const chunks: Buffer[] = [];
        let n = 0;
        res.on('data', (d: Buffer) => {
          chunks.push(d);
          n += d.length;
          if (n >= 1_000_000 && !halfAt) halfAt = Date.now() - started;
        });
        res.on('end', () => resolve({ body: Buffer.concat(chunks), ms: Date.now() - started }));
        res.on('error', reject);
      });
    });
    assert.ok(r.body.equals(content(2_000_000)), 'every byte, in order');
    assert.ok(halfAt < 300, `the first half came at once (${halfAt} ms)`);
    assert.ok(r.ms >= 400, `the rest after the pause (${r.ms} ms)`);
    assert.equal(proxy.stats.stalls, 1);
  });

  it('the method and path filters choose which requests get faults; latency still applies to all', async () => {
    proxy.setFaults({ errorRate: 1, methods: ['get'], path: /^\/bytes\//, latencyMs: 20 });
    assert.equal((await request(proxy.url, 'PUT', '/bucket/k', { body: content(10), headers: { 'Content-Length': '10' } })).status, 201);
    assert.equal((await request(proxy.url, 'GET', '/chunked')).status, 200);
    assert.equal((await request(proxy.url, 'GET', '/bytes/5')).status, 503);
    assert.equal(proxy.stats.errors, 1);
    assert.equal(proxy.stats.delayed, 3);
  });

  it('maxFaults bounds a rule; with a list of rules the first one matching a request decides', async () => {
    proxy.setFaults({ errorRate: 1, maxFaults: 2 });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await request(proxy.url, 'GET', '/bytes/3')).status);
    assert.deepEqual(statuses, [503, 503, 200, 200]);
    proxy.resetStats();
    proxy.setFaults([
      { methods: ['POST'], path: /\?uploads=/, resetRate: 1, maxFaults: 1 },
      { methods: ['POST'], path: /\?uploadId=/, errorRate: 1, errorStatus: 500, maxFaults: 1 },
      { latencyMs: 30 },
    ]);
    const post = (p: string) => request(proxy.url, 'POST', p, { body: content(4), headers: { 'Content-Length': '4' } });
    const outcomes = [];
    for (const p of ['/empty/k?uploads=', '/empty/k?uploads=', '/empty/k?uploadId=1', '/empty/k?uploadId=1', '/empty/k?partNumber=1&uploadId=1']) {
      const r = await post(p);
      outcomes.push(r.error ? 'reset' : String(r.status));
    }
    assert.deepEqual(outcomes, ['reset', '200', '500', '200', '200']);
    assert.deepEqual(
      proxy.stats.events.map((e) => `${e.kind} ${e.url}`),
      ['reset /empty/k?uploads=', 'error /empty/k?uploadId=1'],
    );
    assert.equal(proxy.stats.delayed, 5, 'the latency of any rule applies to every request');
  });

  it('decisions are deterministic for a seed and follow the rates', async () => {
    const outcomes = async (seed: number) => {
      proxy.setFaults({ errorRate: 0.2, resetRate: 0.1, seed });
      const out: string[] = [];
      for (let i = 0; i < 40; i++) {
        const r = await request(proxy.url, 'GET', '/bytes/2');
        out.push(r.status === 503 ? 'error' : r.error ? 'reset' : 'ok');
      }
      return out;
    };
    const a = await outcomes(7);
    const b = await outcomes(7);
    const c = await outcomes(8);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    // The same decisions as the generator gives.
    const r = seededRandom(7);
    assert.deepEqual(
      a,
      Array.from({ length: 40 }, () => r()).map((x) => (x < 0.2 ? 'error' : x < 0.3 ? 'reset' : 'ok')),
    );
    const rate = (xs: string[], k: string) => xs.filter((x) => x === k).length / xs.length;
    assert.ok(rate([...a, ...c], 'error') > 0.05 && rate([...a, ...c], 'error') < 0.4);
    assert.throws(() => proxy.setFaults({ errorRate: 0.8, truncateRate: 0.3 }), /add up to 1.1/);
  });

  it('a target that is down: the client connection fails at once, it does not hang', async () => {
    await origin.close();
    const r = await request(proxy.url, 'GET', '/bytes/10');
    assert.equal(r.status, undefined);
    assert.ok(r.error);
    assert.ok(r.ms < 5000);
    assert.equal(proxy.stats.upstreamFailures, 1);
    origin = await startOrigin(); // for afterEach
  });
});
