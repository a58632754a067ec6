/**
 * A fault-injecting HTTP reverse proxy for the fault suite, put in front of the S3 server
 * (`DR_S3_ENDPOINT` pointed at it). Streaming both ways (node:http, no buffering of bodies), faults
 * changeable at run time, decisions from a seeded random generator.
 *
 * Headers pass through unchanged in both directions (names, values, order), the client's `Host`
 * included: the SDK signs (SigV4) for the host:port it talks to, which is the proxy's, and the server
 * checks the signature against the `Host` it receives, so it must be the one the client sent. Only
 * the hop-by-hop `Connection` and `Keep-Alive` headers are left to each side's own connection
 * handling (they are never signed).
 *
 * Faults are one settings object or a list of them (rules): each request is decided once, by the
 * first rule whose filters (methods, path) match it: error, reset, truncate, corrupt, stall or none.
 *  - `latencyMs`: delay before each request is forwarded (every request, filters or not; the
 *    largest of the rules');
 *  - `errorRate` + `errorStatus`: answered by the proxy with an S3 XML error (503 SlowDown, 500
 *    InternalError, …) after reading the request body; the server never sees the request;
 *  - `resetRate`: forwarded and answered by the server (so it did the work: an object written, an
 *    upload created), then the client connection is reset (TCP RST): when the response has a body,
 *    after the headers and half of it, otherwise before any byte of the response;
 *  - `truncateRate`: the response headers with the full Content-Length, then only the first half of
 *    the body, then the connection is closed normally (FIN): a premature end of the body;
 *  - `corruptRate`: the whole body with the same length, one byte (the middle one) inverted;
 *  - `stallRate` + `stallMs`: half of the body, then nothing for `stallMs` (a server or network that
 *    hangs mid-download), then the rest.
 * Truncation, corruption and stalls apply only to responses with a body; a request decided for one
 * of them whose response has none passes unchanged and is not counted (but counts for maxFaults).
 * When the target is down, the client's connection is reset (the proxy never makes up an answer).
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type FaultKind = 'error' | 'reset' | 'truncate' | 'corrupt' | 'stall';

export interface FaultSettings {
  /** Delay (ms) before every request is forwarded. */
  latencyMs?: number;
  /** Share (0..1) of matching requests answered with `errorStatus` by the proxy itself. */
  errorRate?: number;
  /** HTTP status of injected errors: 503 (SlowDown, the default), 500 (InternalError), or another 5xx/4xx. */
  errorStatus?: number;
  /** Share of matching requests whose connection is reset mid-response. */
  resetRate?: number;
  /** Share of matching requests whose response body is cut short (Content-Length kept). */
  truncateRate?: number;
  /** Share of matching requests whose response body has one byte changed. */
  corruptRate?: number;
  /** Share of matching requests whose response body pauses for `stallMs` in its middle. */
  stallRate?: number;
  /** How long a stalled body pauses (default 30 s). */
  stallMs?: number;
  /** Only requests with these methods get faults (e.g. ['GET'] for downloads); default all. */
  methods?: string[];
  /** Only requests whose path (with query) matches get faults; default all. */
  path?: RegExp;
  /** At most this many faults injected by this rule from now on (then its requests pass): e.g. 1 to lose exactly one response. */
  maxFaults?: number;
  /** Seed of the rule's random decisions (default 1); setting faults restarts the sequence. */
  seed?: number;
}

export interface FaultEvent {
  kind: FaultKind;
  method: string;
  url: string;
}

export interface FaultStats {
  /** Requests received. */
  requests: number;
  /** Requests received, by HTTP method (`PUT`, `GET`, …): what an S3 bill counts. */
  byMethod: Record<string, number>;
  /** Requests forwarded to the target. */
  forwarded: number;
  /** Requests delayed by latencyMs. */
  delayed: number;
  errors: number;
  resets: number;
  truncations: number;
  corruptions: number;
  stalls: number;
  /** Requests whose forwarding failed (target down): the client connection was reset. */
  upstreamFailures: number;
  /** Injected faults, in order (the most recent 10,000). */
  events: FaultEvent[];
}

export interface FaultProxy {
  /** `http://127.0.0.1:<port>`: the endpoint to give the S3 client. */
  url: string;
  port: number;
  /** Replaces the fault settings: one rule or a list (the first rule matching a request decides); `{}` for none. */
  setFaults(f: FaultSettings | FaultSettings[]): void;
  readonly stats: FaultStats;
  /** Injected faults so far (errors + resets + truncations + corruptions + stalls). */
  injected(): number;
  resetStats(): void;
  close(): Promise<void>;
}

/** mulberry32: a small deterministic generator of numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const S3_ERRORS: Record<number, { code: string; message: string }> = {
  500: { code: 'InternalError', message: 'We encountered an internal error. Please try again.' },
  503: { code: 'SlowDown', message: 'Please reduce your request rate.' },
  502: { code: 'BadGateway', message: 'Bad gateway.' },
  504: { code: 'GatewayTimeout', message: 'Gateway timeout.' },
};

/** Hop-by-hop headers: each connection's own business, never signed by SigV4. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive']);

function passHeaders(raw: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (!HOP_BY_HOP.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

function s3ErrorBody(status: number, resource: string, requestId: string): string {
  const e = S3_ERRORS[status] ?? { code: `Http${status}`, message: `Injected HTTP ${status}.` };
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${e.code}</Code><Message>${e.message}</Message><Resource>${resource.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</Resource>` +
    `<RequestId>${requestId}</RequestId></Error>`
  );
}

function resetSocket(socket: Socket | null | undefined): void {
  if (!socket || socket.destroyed) return;
  socket.resetAndDestroy();
}

const emptyStats = (): FaultStats => ({
  requests: 0,
  byMethod: {},
  forwarded: 0,
  delayed: 0,
  errors: 0,
  resets: 0,
  truncations: 0,
  corruptions: 0,
  stalls: 0,
  upstreamFailures: 0,
  events: [],
});

export async function startFaultProxy(opts: { target: string; faults?: FaultSettings | FaultSettings[]; host?: string; port?: number }): Promise<FaultProxy> {
  const target = new URL(opts.target);
  if (target.protocol !== 'http:') throw new Error(`the fault proxy forwards to http:// targets only, got ${opts.target}`);
  interface Rule {
    f: FaultSettings;
    random: () => number;
    /** Faults decided since the rule was set (for maxFaults). */
    decided: number;
  }
  let rules: Rule[] = [];
  let stats = emptyStats();
  let nextId = 0;

  const setFaults = (f: FaultSettings | FaultSettings[]) => {
    rules = (Array.isArray(f) ? f : [f]).map((one) => {
      const rates = (one.errorRate ?? 0) + (one.resetRate ?? 0) + (one.truncateRate ?? 0) + (one.corruptRate ?? 0) + (one.stallRate ?? 0);
      if (rates > 1 + 1e-9) throw new Error(`fault rates add up to ${rates}, more than 1`);
      return { f: { ...one, ...(one.methods ? { methods: one.methods.map((m) => m.toUpperCase()) } : {}) }, random: seededRandom(one.seed ?? 1), decided: 0 };
    });
  };
  setFaults(opts.faults ?? {});

  const record = (kind: FaultKind, req: IncomingMessage) => {
    const key = ({ error: 'errors', reset: 'resets', truncate: 'truncations', corrupt: 'corruptions', stall: 'stalls' } as const)[kind];
    stats[key]++;
    stats.events.push({ kind, method: req.method ?? '?', url: req.url ?? '' });
    if (stats.events.length > 10_000) stats.events.shift();
  };

  const pick = (f: FaultSettings, r: number): FaultKind | undefined => {
    let edge = f.errorRate ?? 0;
    if (r < edge) return 'error';
    edge += f.resetRate ?? 0;
    if (r < edge) return 'reset';
    edge += f.truncateRate ?? 0;
    if (r < edge) return 'truncate';
    edge += f.corruptRate ?? 0;
    if (r < edge) return 'corrupt';
    edge += f.stallRate ?? 0;
    if (r < edge) return 'stall';
    return undefined;
  };

  /**
   * One decision per request, by the first rule whose filters match it (that rule's random
   * sequence is used by the requests it matches only).
   */
  const decide = (req: IncomingMessage): { kind: FaultKind | undefined; rule?: Rule } => {
    const rule = rules.find(({ f }) => (!f.methods || f.methods.includes((req.method ?? '').toUpperCase())) && (!f.path || f.path.test(req.url ?? '')));
    if (!rule) return { kind: undefined };
    if (rule.f.maxFaults !== undefined && rule.decided >= rule.f.maxFaults) return { kind: undefined, rule };
    const kind = pick(rule.f, rule.random());
    if (kind) rule.decided++;
    return { kind, rule };
  };

  const answerError = (req: IncomingMessage, res: ServerResponse, status: number) => {
    const requestId = `FAULTPROXY${++nextId}`;
    const body = Buffer.from(s3ErrorBody(status, (req.url ?? '/').split('?')[0]!, requestId));
    // S3 reads the request before it answers: drain it so the connection stays usable.
    req.on('end', () => {
      res.writeHead(status, {
        'Content-Type': 'application/xml',
        'Content-Length': String(body.length),
        'x-amz-request-id': requestId,
        ...(status === 503 ? { 'Retry-After': '0' } : {}),
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
    req.resume();
  };

  /** Relays the upstream response, applying the decided fault to it. */
  const relay = (req: IncomingMessage, res: ServerResponse, up: IncomingMessage, fault: FaultKind | undefined, stallMs: number) => {
    const headers = passHeaders(up.rawHeaders);
    const lengthHeader = up.headers['content-length'];
    const length = lengthHeader !== undefined ? Number(lengthHeader) : undefined;
    const chunked = /chunked/i.test(String(up.headers['transfer-encoding'] ?? ''));
    const hasBody = req.method !== 'HEAD' && up.statusCode !== 204 && up.statusCode !== 304 && ((length ?? 0) > 0 || chunked);
    if (fault === 'reset' && !hasBody) {
      record('reset', req);
      up.destroy();
      resetSocket(res.socket);
      return;
    }
    if ((fault === 'truncate' || fault === 'corrupt' || fault === 'stall') && !hasBody) fault = undefined;
    res.writeHead(up.statusCode ?? 502, up.statusMessage, headers);
    if (!fault) {
      up.pipe(res);
      return;
    }
    record(fault, req);
    // The headers go out now, whatever happens to the body.
    res.flushHeaders();
    const write = (chunk: Buffer) => {
      if (!res.write(chunk)) {
        up.pause();
        res.once('drain', () => up.resume());
      }
    };
    up.on('error', () => resetSocket(res.socket));
    if (fault === 'corrupt') {
      // One byte inverted: the middle one (the first of a chunked body of unknown length).
      const at = length !== undefined ? Math.floor(length / 2) : 0;
      let seen = 0;
      up.on('data', (chunk: Buffer) => {
        const start = seen;
        seen += chunk.length;
        if (at >= start && at < seen) {
          chunk = Buffer.from(chunk);
          chunk[at - start] = chunk[at - start]! ^ 0xff;
        }
        write(chunk);
      });
      up.on('end', () => res.end());
      return;
    }
    if (fault === 'stall') {
      // Half of the body (the first chunk when its length is unknown), a pause, the rest.
      const half = length !== undefined ? Math.floor(length / 2) : 1;
      let seen = 0;
      let stalling = false;
      let timer: NodeJS.Timeout | undefined;
      const send = (chunk: Buffer) => {
        if (!res.write(chunk)) {
          up.pause();
          res.once('drain', () => {
            if (!stalling) up.resume();
          });
        }
      };
      res.on('close', () => {
        if (timer) clearTimeout(timer);
        up.destroy();
      });
      up.on('data', (chunk: Buffer) => {
        const start = seen;
        seen += chunk.length;
        if (timer || seen < half) return send(chunk);
        stalling = true;
        up.pause();
        send(chunk.subarray(0, half - start));
        timer = setTimeout(() => {
          stalling = false;
          send(chunk.subarray(half - start));
          if (!res.writableNeedDrain) up.resume();
        }, stallMs);
      });
      up.on('end', () => res.end());
      return;
    }
    // reset, truncate: the body is cut in its middle (after the first chunk when its length is unknown).
    const cut = length !== undefined ? Math.floor(length / 2) : undefined;
    let seen = 0;
    let stopped = false;
    const stop = () => {
      if (stopped) return;
      stopped = true;
      up.destroy();
      if (fault === 'reset') resetSocket(res.socket);
      // truncate: a normal close (FIN), the body short of its Content-Length.
      else res.socket?.end();
    };
    if (cut === 0) {
      stop();
      return;
    }
    up.on('data', (chunk: Buffer) => {
      if (stopped) return;
      const start = seen;
      seen += chunk.length;
      if (cut !== undefined && seen < cut) return write(chunk);
      const keep = cut === undefined ? chunk.length : cut - start;
      up.pause();
      res.write(chunk.subarray(0, keep), () => stop());
    });
    up.on('end', () => {
      if (!stopped) res.end();
    });
  };

  const server = http.createServer((req, res) => {
    stats.requests++;
    const method = (req.method ?? '?').toUpperCase();
    stats.byMethod[method] = (stats.byMethod[method] ?? 0) + 1;
    const { kind: fault, rule } = decide(req);
    const latency = Math.max(0, ...rules.map((r) => r.f.latencyMs ?? 0));
    const go = () => {
      if (req.socket.destroyed) return;
      if (fault === 'error') {
        record('error', req);
        answerError(req, res, rule?.f.errorStatus ?? 503);
        return;
      }
      stats.forwarded++;
      const upstream = http.request({
        host: target.hostname,
        port: target.port || 80,
        method: req.method,
        path: req.url,
        // The client's headers as they came (Host included): see the module comment.
        headers: passHeaders(req.rawHeaders) as unknown as http.OutgoingHttpHeaders,
        setHost: false,
        // A connection per request: no idle upstream socket can be closed under a new request
        // (that would be a fault nobody asked for), and a restarted server is reached at once.
        agent: false,
      });
      upstream.on('response', (up) => relay(req, res, up, fault, rule?.f.stallMs ?? 30_000));
      upstream.on('error', () => {
        stats.upstreamFailures++;
        // Like the server being unreachable: the client's connection fails (no made-up answer).
        resetSocket(req.socket);
      });
      res.on('close', () => {
        if (!res.writableFinished) upstream.destroy();
      });
      req.pipe(upstream);
    };
    if (latency > 0) {
      stats.delayed++;
      setTimeout(go, latency);
    } else go();
  });
  // Longer than the SDK keeps idle sockets, so the proxy never closes one under a new request.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 125_000;
  server.requestTimeout = 0;
  server.on('clientError', (_err, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
    port,
    setFaults,
    get stats() {
      return stats;
    },
    injected: () => stats.errors + stats.resets + stats.truncations + stats.corruptions + stats.stalls,
    resetStats: () => {
      stats = emptyStats();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
