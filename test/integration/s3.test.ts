/**
 * src/storage/s3/ against the real versitygw of the local stack. A small forwarding proxy
 * (node:http, in this process) sits in front of it where a test must count what is really sent or
 * make the server misbehave (a failing part, a server without SSE); everything else talks to
 * versitygw directly. Each run writes under its own prefix and deletes what it created.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, rm } from 'node:fs/promises';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { ArtifactCorruptedError, BucketNotFoundError, CloudAuthError, CloudUnavailableError, DiskFullError, InvalidInputError } from '../../src/errors';
import {
  abortStaleUploads,
  cloudKey,
  compositeSha256,
  createS3Client,
  deleteObjects,
  downloadFile,
  headObject,
  listObjects,
  mapS3Error,
  uploadFile,
  verifyObject,
  type CloudSettings,
  type UploadProgress,
} from '../../src/storage/s3';
import { stackConfig, uniqueSuffix } from '../helpers/config';

const MiB = 1024 * 1024;

interface LocalFile {
  file: string;
  bytes: number;
  sha256: string;
}

/** Writes `bytes` random bytes (1 MiB at a time) and returns the file's size and SHA-256. */
async function makeFile(dir: string, name: string, bytes: number): Promise<LocalFile> {
  const file = path.join(dir, name);
  const hash = createHash('sha256');
  const fh = await open(file, 'w');
  try {
    for (let done = 0; done < bytes;) {
      const chunk = randomBytes(Math.min(MiB, bytes - done));
      hash.update(chunk);
      await fh.write(chunk);
      done += chunk.length;
    }
  } finally {
    await fh.close();
  }
  return { file, bytes, sha256: hash.digest('hex') };
}

async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Flips one byte of a file in place (same size, different content). */
async function flipByte(file: string, position: number): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, position);
    b[0] = b[0]! ^ 0xff;
    await fh.write(b, 0, 1, position);
  } finally {
    await fh.close();
  }
}

/** SHA-256 digests of a file's parts, for the expected composite checksum. */
async function partDigests(file: string, partSize: number): Promise<Buffer[]> {
  const digests: Buffer[] = [];
  let part = createHash('sha256');
  let fill = 0;
  for await (const c of createReadStream(file)) {
    const chunk = c as Buffer;
    for (let off = 0; off < chunk.length;) {
      const n = Math.min(partSize - fill, chunk.length - off);
      part.update(chunk.subarray(off, off + n));
      fill += n;
      off += n;
      if (fill === partSize) {
        digests.push(part.digest());
        part = createHash('sha256');
        fill = 0;
      }
    }
  }
  if (fill > 0) digests.push(part.digest());
  return digests;
}

interface SeenRequest {
  method: string;
  url: URL;
  headers: IncomingHttpHeaders;
}
type Refusal = { status: number; code: string; message: string };

/** A forwarding proxy to the S3 endpoint that records requests and can refuse some of them. */
async function startProxy(target: string, refuse?: (r: SeenRequest) => Refusal | undefined) {
  const upstream = new URL(target);
  const seen: SeenRequest[] = [];
  const refused: SeenRequest[] = [];
  const server = http.createServer((req, res) => {
    const r: SeenRequest = { method: req.method ?? 'GET', url: new URL(req.url ?? '/', 'http://proxy'), headers: req.headers };
    seen.push(r);
    const refusal = refuse?.(r);
    if (refusal) {
      refused.push(r);
      req.resume();
      req.on('end', () => {
        res.writeHead(refusal.status, { 'content-type': 'application/xml' });
        res.end(
          `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${refusal.code}</Code><Message>${refusal.message}</Message>` +
            `<RequestId>proxy</RequestId></Error>`,
        );
      });
      return;
    }
    const headers = { ...req.headers };
    delete headers.expect; // this proxy already answered 100-continue
    const up = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers }, (ures) => {
      res.writeHead(ures.statusCode ?? 502, ures.headers);
      ures.pipe(res);
    });
    up.on('error', (e) => res.destroy(e));
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    seen,
    refused,
    /** Part numbers of the UploadPart requests seen. */
    partsSent: () => seen.filter((r) => r.method === 'PUT' && r.url.searchParams.has('partNumber')).map((r) => Number(r.url.searchParams.get('partNumber'))),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('S3 storage (real versitygw)', function () {
  this.timeout(120_000);
  const cloud: CloudSettings = stackConfig().cloud!;
  const run = `test-s3-${Date.now()}-${uniqueSuffix()}`;
  const prefix = cloudKey(cloud, run) + '/';
  const k = (...parts: string[]) => cloudKey(cloud, run, ...parts);
  let dir: string;
  let direct: S3Client;

  const uploadsFor = async (key: string) => {
    const out = await direct.send(new ListMultipartUploadsCommand({ Bucket: cloud.bucket, Prefix: key }));
    return (out.Uploads ?? []).filter((u) => u.Key === key);
  };

  before(async () => {
    assert.ok(cloud, 'the local stack configuration has DR_CLOUD_BUCKET');
    dir = await mkdtemp(path.join(os.tmpdir(), 'odoo-dr-s3-'));
    direct = createS3Client(cloud);
  });

  after(async () => {
    const keys: string[] = [];
    for await (const o of listObjects(cloud, prefix)) keys.push(o.key);
    await deleteObjects(cloud, keys);
    await abortStaleUploads(cloud, prefix, 0);
    const left: string[] = [];
    for await (const o of listObjects(cloud, prefix)) left.push(o.key);
    assert.deepEqual(left, [], 'the test removed everything it created');
    direct.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  it('cloudKey joins the prefix and parts without leading or doubled slashes and refuses ..', () => {
    const c = { ...cloud, prefix: 'backups' };
    assert.equal(cloudKey(c, 'sessions', 'b_1', 'manifest.json'), 'backups/sessions/b_1/manifest.json');
    assert.equal(cloudKey(c, '/sessions/', '//b_1'), 'backups/sessions/b_1');
    assert.equal(cloudKey(c, 'sessions/'), 'backups/sessions/', 'a trailing slash makes a listing prefix');
    assert.equal(cloudKey({ ...c, prefix: '' }, 'blobs', 'ab', 'abcdef'), 'blobs/ab/abcdef');
    assert.throws(() => cloudKey(c, 'sessions', '..', 'etc'), InvalidInputError);
  });

  it('uploads a small file with one PUT, server-checked SHA-256, and verifies it', async () => {
    const f = await makeFile(dir, 'small.bin', 300 * 1024);
    const key = k('small.bin');
    const progress: UploadProgress[] = [];
    const res = await uploadFile({ cloud, key, file: f.file, expectedBytes: f.bytes, expectedSha256: f.sha256, onProgress: (p) => progress.push(p) });
    assert.equal(res.bytes, f.bytes);
    assert.equal(res.sha256, f.sha256);
    assert.equal(res.uploadId, undefined, 'a single PUT');
    assert.equal(res.resumed, false);
    assert.equal(res.s3Checksum, Buffer.from(f.sha256, 'hex').toString('base64'), 'versitygw returns the full-object SHA-256');
    assert.deepEqual(progress, []);
    if (cloud.serverSideEncryption) {
      assert.equal(res.serverSideEncryption, undefined, 'versitygw does not confirm SSE');
      assert.ok(
        res.notes.some((n) => /did not confirm/.test(n)),
        res.notes.join('; '),
      );
    }
    const head = await headObject(cloud, key);
    assert.equal(head?.bytes, f.bytes);
    assert.equal(head?.sha256, f.sha256, 'x-amz-meta-sha256');
    const v = await verifyObject(cloud, key, { bytes: f.bytes, sha256: f.sha256 });
    assert.equal(v.ok, true, v.message);
    assert.match(v.message, /server SHA-256 checksum/);
    const wrong = await verifyObject(cloud, key, { bytes: f.bytes, sha256: createHash('sha256').update('other').digest('hex') });
    assert.equal(wrong.ok, false);
  });

  it('uploads a large file in parts, reporting each part, and verifies it (composite checksum, deep)', async () => {
    const partSize = 5 * MiB;
    const f = await makeFile(dir, 'large.bin', 21 * MiB + 12345);
    const key = k('large.bin');
    const progress: UploadProgress[] = [];
    const res = await uploadFile({
      cloud,
      key,
      file: f.file,
      expectedBytes: f.bytes,
      expectedSha256: f.sha256,
      partSize,
      queueSize: 2,
      onProgress: (p) => progress.push(p),
    });
    assert.ok(res.uploadId, 'multipart');
    assert.equal(res.sha256, f.sha256);
    assert.equal(res.s3Checksum, compositeSha256(await partDigests(f.file, partSize)));
    assert.match(res.s3Checksum ?? '', /-5$/);
    assert.equal(progress.length, 5, 'one call per part');
    const last = progress.at(-1)!;
    assert.deepEqual(last.partsDone, [1, 2, 3, 4, 5]);
    assert.equal(last.bytesSent, f.bytes);
    assert.equal(last.uploadId, res.uploadId);
    assert.equal(last.partSize, partSize);
    assert.deepEqual(await uploadsFor(key), [], 'completed, nothing pending');

    const v = await verifyObject(cloud, key, { bytes: f.bytes, sha256: f.sha256 });
    assert.equal(v.ok, true, v.message);
    assert.match(v.message, /x-amz-meta-sha256/);
    assert.match(v.message, /composite/);
    const deep = await verifyObject(cloud, key, { bytes: f.bytes, sha256: f.sha256 }, { deep: true });
    assert.equal(deep.ok, true, deep.message);
    assert.match(deep.message, /downloaded and hashed/);
    assert.equal((await verifyObject(cloud, key, { bytes: f.bytes + 1, sha256: f.sha256 })).ok, false);
    const missing = await verifyObject(cloud, k('nope.bin'), { bytes: 1, sha256: f.sha256 });
    assert.deepEqual([missing.ok, missing.bytes], [false, undefined]);
    assert.match(missing.message, /missing/);
  });

  it('refuses a local file corrupted after it was written, leaving no object and no parts', async () => {
    for (const [name, size] of [
      ['corrupt-small.bin', 64 * 1024],
      ['corrupt-large.bin', 12 * MiB],
    ] as const) {
      const f = await makeFile(dir, name, size);
      await flipByte(f.file, size - 10); // in the last part: every earlier part is already sent
      const key = k(name);
      await assert.rejects(uploadFile({ cloud, key, file: f.file, expectedBytes: f.bytes, expectedSha256: f.sha256, partSize: 5 * MiB }), (err: Error) => {
        assert.ok(err instanceof ArtifactCorruptedError, `${err.name}: ${err.message}`);
        assert.ok(err.message.includes(f.file), 'names the file');
        return true;
      });
      assert.equal(await headObject(cloud, key), null, `${name}: no object`);
      assert.deepEqual(await uploadsFor(key), [], `${name}: no multipart upload left`);
    }
    // A size change is refused before anything is sent.
    const g = await makeFile(dir, 'grown.bin', 1000);
    await assert.rejects(uploadFile({ cloud, key: k('grown.bin'), file: g.file, expectedBytes: 999, expectedSha256: g.sha256 }), ArtifactCorruptedError);
    await assert.rejects(
      uploadFile({ cloud, key: k('absent.bin'), file: path.join(dir, 'absent.bin'), expectedBytes: 1, expectedSha256: g.sha256 }),
      ArtifactCorruptedError,
    );
  });

  describe('resume after a simulated worker crash', () => {
    const partSize = 5 * MiB;
    let f: LocalFile;
    let key: string;
    let crashed: UploadProgress;

    before(async () => {
      f = await makeFile(dir, 'resume.bin', 40 * MiB + 777); // 9 parts of 5 MiB
      key = k('resume.bin');
    });

    it('stops on the signal and keeps the parts already sent', async () => {
      const ac = new AbortController();
      let last: UploadProgress | undefined;
      await assert.rejects(
        uploadFile({
          cloud,
          key,
          file: f.file,
          expectedBytes: f.bytes,
          expectedSha256: f.sha256,
          partSize,
          queueSize: 1,
          signal: ac.signal,
          onProgress: (p) => {
            last = p;
            if (p.partsDone.length >= 2) ac.abort(new Error('simulated worker crash'));
          },
        }),
        /simulated worker crash/,
      );
      assert.ok(last, 'progress was reported');
      crashed = last;
      assert.deepEqual(crashed.partsDone, [1, 2]);
      assert.equal(crashed.bytesSent, 2 * partSize);
      const parts = await direct.send(new ListPartsCommand({ Bucket: cloud.bucket, Key: key, UploadId: crashed.uploadId }));
      assert.ok((parts.Parts ?? []).length >= 2, 'the multipart upload and its parts are still there');
      assert.equal(await headObject(cloud, key), null, 'not completed');
    });

    it('resumes: sends only the missing parts, re-hashes the whole file, completes', async () => {
      assert.ok(crashed, 'needs the previous test');
      const proxy = await startProxy(cloud.endpoint!);
      try {
        const progress: UploadProgress[] = [];
        const res = await uploadFile({
          cloud: { ...cloud, endpoint: proxy.endpoint },
          key,
          file: f.file,
          expectedBytes: f.bytes,
          expectedSha256: f.sha256,
          resume: crashed,
          queueSize: 2,
          onProgress: (p) => progress.push(p),
        });
        assert.equal(res.resumed, true);
        assert.ok(res.partsReused >= 2, `partsReused ${res.partsReused}`);
        assert.equal(res.uploadId, crashed.uploadId);
        assert.equal(res.sha256, f.sha256);
        const sent = proxy.partsSent().sort((a, b) => a - b);
        for (const n of crashed.partsDone) assert.ok(!sent.includes(n), `part ${n} was already on the server and must not be sent again`);
        assert.deepEqual(
          [...sent, ...crashed.partsDone].sort((a, b) => a - b),
          [1, 2, 3, 4, 5, 6, 7, 8, 9],
        );
        assert.equal(sent.length, 9 - res.partsReused);
        assert.ok(!proxy.seen.some((r) => r.method === 'POST' && r.url.searchParams.has('uploads')), 'no new multipart upload');
        assert.deepEqual(progress.at(-1)?.partsDone, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert.equal(res.s3Checksum, compositeSha256(await partDigests(f.file, partSize)));
      } finally {
        await proxy.close();
      }
      assert.deepEqual(await uploadsFor(key), []);
      const back = path.join(dir, 'resume.back');
      const got = await downloadFile(cloud, key, back, { expectedBytes: f.bytes, expectedSha256: f.sha256 });
      assert.deepEqual(got, { bytes: f.bytes, sha256: f.sha256 });
      assert.equal(await sha256OfFile(back), f.sha256, 'the object is the file, byte for byte');
    });

    it('a retry after the crashed attempt had completed sends nothing', async () => {
      const proxy = await startProxy(cloud.endpoint!);
      try {
        const res = await uploadFile({
          cloud: { ...cloud, endpoint: proxy.endpoint },
          key,
          file: f.file,
          expectedBytes: f.bytes,
          expectedSha256: f.sha256,
          resume: crashed,
        });
        assert.equal(res.resumed, true);
        assert.equal(res.partsReused, 0);
        assert.ok(
          res.notes.some((n) => /already completed/.test(n)),
          res.notes.join('; '),
        );
        assert.equal(proxy.seen.filter((r) => r.method === 'PUT' || r.method === 'POST').length, 0, 'nothing uploaded');
      } finally {
        await proxy.close();
      }
    });

    it('a resumed upload can itself be interrupted and resumed again', async () => {
      const g = await makeFile(dir, 'twice.bin', 26 * MiB); // 6 parts
      const gkey = k('twice.bin');
      const base = { cloud, key: gkey, file: g.file, expectedBytes: g.bytes, expectedSha256: g.sha256, partSize, queueSize: 1 };
      const crashAfter = async (parts: number, resume?: UploadProgress): Promise<UploadProgress> => {
        const ac = new AbortController();
        let last: UploadProgress | undefined;
        await assert.rejects(
          uploadFile({
            ...base,
            resume,
            signal: ac.signal,
            onProgress: (p) => {
              last = p;
              if (p.partsDone.length >= parts) ac.abort(new Error('simulated worker crash'));
            },
          }),
          /simulated worker crash/,
        );
        assert.ok(last);
        return last;
      };
      const first = await crashAfter(2);
      const second = await crashAfter(4, first);
      assert.equal(second.uploadId, first.uploadId);
      assert.deepEqual(second.partsDone, [1, 2, 3, 4]);
      const proxy = await startProxy(cloud.endpoint!);
      try {
        const res = await uploadFile({ ...base, cloud: { ...cloud, endpoint: proxy.endpoint }, resume: second });
        assert.equal(res.partsReused, 4);
        assert.deepEqual(
          proxy.partsSent().sort((a, b) => a - b),
          [5, 6],
        );
      } finally {
        await proxy.close();
      }
      assert.equal((await verifyObject(cloud, gkey, g, { deep: true })).ok, true);
    });

    it('starts over when the multipart upload no longer exists', async () => {
      const g = await makeFile(dir, 'gone.bin', 11 * MiB);
      const res = await uploadFile({
        cloud,
        key: k('gone.bin'),
        file: g.file,
        expectedBytes: g.bytes,
        expectedSha256: g.sha256,
        partSize,
        resume: { uploadId: 'no-such-upload', key: k('gone.bin'), partSize, partsDone: [1], bytesSent: partSize },
      });
      assert.equal(res.resumed, false);
      assert.ok(
        res.notes.some((n) => /no longer exists/.test(n)),
        res.notes.join('; '),
      );
      assert.equal((await verifyObject(cloud, k('gone.bin'), g)).ok, true);
    });

    it('refuses to complete a resumed upload when the file changed in a part already sent', async () => {
      const g = await makeFile(dir, 'resume-corrupt.bin', 16 * MiB);
      const gkey = k('resume-corrupt.bin');
      const ac = new AbortController();
      let last: UploadProgress | undefined;
      await assert.rejects(
        uploadFile({
          cloud,
          key: gkey,
          file: g.file,
          expectedBytes: g.bytes,
          expectedSha256: g.sha256,
          partSize,
          queueSize: 1,
          signal: ac.signal,
          onProgress: (p) => {
            last = p;
            if (p.partsDone.length >= 2) ac.abort(new Error('simulated worker crash'));
          },
        }),
        /simulated worker crash/,
      );
      assert.ok(last);
      await flipByte(g.file, 1000); // inside part 1, already on the server
      await assert.rejects(
        uploadFile({ cloud, key: gkey, file: g.file, expectedBytes: g.bytes, expectedSha256: g.sha256, resume: last }),
        (err: Error) => err instanceof ArtifactCorruptedError && err.message.includes(g.file),
      );
      assert.equal(await headObject(cloud, gkey), null);
      assert.deepEqual(await uploadsFor(gkey), [], 'the multipart upload was aborted');
    });
  });

  describe('cancelled for good (discardOnAbort)', () => {
    const partSize = 5 * MiB;

    it('an upload cancelled mid-way, parts in flight, leaves no multipart upload of its key', async () => {
      const f = await makeFile(dir, 'cancelled.bin', 31 * MiB); // 7 parts
      const key = k('cancelled.bin');
      const ac = new AbortController();
      let last: UploadProgress | undefined;
      await assert.rejects(
        uploadFile({
          cloud,
          key,
          file: f.file,
          expectedBytes: f.bytes,
          expectedSha256: f.sha256,
          partSize,
          queueSize: 3,
          signal: ac.signal,
          discardOnAbort: () => true,
          onProgress: (p) => {
            last = p;
            if (p.partsDone.length >= 2) ac.abort(new Error('cancelled by the workflow'));
          },
        }),
        /cancelled by the workflow/,
      );
      assert.ok(last && last.partsDone.length >= 2 && last.partsDone.length < 7, 'it was cancelled mid-way');
      assert.deepEqual(await uploadsFor(key), [], 'no multipart upload left');
      await assert.rejects(direct.send(new ListPartsCommand({ Bucket: cloud.bucket, Key: key, UploadId: last.uploadId })), /NoSuchUpload/);
      assert.equal(await headObject(cloud, key), null, 'not completed');
    });

    it('an upload cancelled while its CreateMultipartUpload is unanswered leaves none either', async () => {
      const f = await makeFile(dir, 'cancelled-early.bin', 11 * MiB);
      const key = k('cancelled-early.bin');
      const ac = new AbortController();
      // The proxy cancels as the request reaches it and forwards it: the server creates the upload after the cancellation.
      const proxy = await startProxy(cloud.endpoint!, (r) => {
        if (r.method === 'POST' && r.url.searchParams.has('uploads')) ac.abort(new Error('cancelled by the workflow'));
        return undefined;
      });
      try {
        await assert.rejects(
          uploadFile({
            cloud: { ...cloud, endpoint: proxy.endpoint },
            key,
            file: f.file,
            expectedBytes: f.bytes,
            expectedSha256: f.sha256,
            partSize,
            signal: ac.signal,
            discardOnAbort: () => true,
          }),
          /cancelled by the workflow/,
        );
        assert.equal(proxy.seen.filter((r) => r.method === 'POST' && r.url.searchParams.has('uploads')).length, 1, 'the upload was created');
      } finally {
        await proxy.close();
      }
      assert.deepEqual(await uploadsFor(key), [], 'no multipart upload left');
    });

    it('a resumed upload cancelled mid-way leaves no multipart upload of its key', async () => {
      const f = await makeFile(dir, 'cancelled-resume.bin', 26 * MiB); // 6 parts
      const key = k('cancelled-resume.bin');
      const base = { cloud, key, file: f.file, expectedBytes: f.bytes, expectedSha256: f.sha256, partSize, queueSize: 1 };
      const crash = new AbortController();
      let crashed: UploadProgress | undefined;
      await assert.rejects(
        uploadFile({
          ...base,
          signal: crash.signal,
          discardOnAbort: () => false,
          onProgress: (p) => {
            crashed = p;
            if (p.partsDone.length >= 2) crash.abort(new Error('simulated worker crash'));
          },
        }),
        /simulated worker crash/,
      );
      assert.ok(crashed);
      assert.equal((await uploadsFor(key)).length, 1, 'kept for the retry when not discarded');
      const cancel = new AbortController();
      let last: UploadProgress | undefined;
      await assert.rejects(
        uploadFile({
          ...base,
          resume: crashed,
          signal: cancel.signal,
          discardOnAbort: () => true,
          onProgress: (p) => {
            last = p;
            if (p.partsDone.length >= 4) cancel.abort(new Error('cancelled by the workflow'));
          },
        }),
        /cancelled by the workflow/,
      );
      assert.equal(last?.uploadId, crashed.uploadId, 'the retry resumed the same upload');
      assert.deepEqual(await uploadsFor(key), [], 'no multipart upload left');
      assert.equal(await headObject(cloud, key), null);
    });
  });

  it('aborts the multipart upload when a part keeps failing, leaving no parts', async () => {
    const f = await makeFile(dir, 'failing.bin', 21 * MiB);
    const key = k('failing.bin');
    const proxy = await startProxy(cloud.endpoint!, (r) =>
      r.method === 'PUT' && r.url.searchParams.get('partNumber') === '3' ? { status: 500, code: 'InternalError', message: 'injected failure' } : undefined,
    );
    try {
      await assert.rejects(
        uploadFile({ cloud: { ...cloud, endpoint: proxy.endpoint }, key, file: f.file, expectedBytes: f.bytes, expectedSha256: f.sha256, partSize: 5 * MiB }),
        (err: Error) => {
          assert.ok(err instanceof CloudUnavailableError, `${err.name}: ${err.message}`);
          assert.match(err.message, /InternalError/);
          return true;
        },
      );
      assert.ok(proxy.refused.length >= 2, 'the SDK retried the part');
      assert.ok(
        proxy.seen.some((r) => r.method === 'DELETE' && r.url.searchParams.has('uploadId')),
        'AbortMultipartUpload was sent',
      );
    } finally {
      await proxy.close();
    }
    assert.deepEqual(await uploadsFor(key), [], 'no multipart upload left');
    assert.equal(await headObject(cloud, key), null);
  });

  it('a single PUT streams the file with its recorded SHA-256, and a failed attempt is retried reading the file again', async () => {
    const f = await makeFile(dir, 'retried.bin', 3 * MiB);
    const key = k('retried.bin');
    let puts = 0;
    const proxy = await startProxy(cloud.endpoint!, (r) =>
      r.method === 'PUT' && ++puts === 1 ? { status: 500, code: 'InternalError', message: 'injected failure' } : undefined,
    );
    try {
      const proxied = { ...cloud, endpoint: proxy.endpoint };
      const res = await uploadFile({ cloud: proxied, key, file: f.file, expectedBytes: f.bytes, expectedSha256: f.sha256, partSize: 5 * MiB });
      assert.equal(res.uploadId, undefined, 'one PUT');
      assert.equal(proxy.refused.length, 1, 'the first attempt was refused (after its whole body was read)');
      const sent = proxy.seen.filter((r) => r.method === 'PUT');
      assert.equal(sent.length, 2, 'the SDK retried it');
      for (const r of sent) {
        assert.equal(r.headers['content-length'], String(f.bytes));
        assert.equal(r.headers['x-amz-checksum-sha256'], Buffer.from(f.sha256, 'hex').toString('base64'), 'the server checks the recorded SHA-256');
      }
    } finally {
      await proxy.close();
    }
    assert.equal((await verifyObject(cloud, key, f, { deep: true })).ok, true, 'the object is the file');
  });

  it('a single PUT stops at once on the signal and leaves no object', async () => {
    const f = await makeFile(dir, 'cancelled-put.bin', 2 * MiB);
    const key = k('cancelled-put.bin');
    const controller = new AbortController();
    // Paced at 512 KiB/s, the PUT would take 4 s.
    const slow = { ...cloud, bandwidthLimit: 512 * 1024 };
    setTimeout(() => controller.abort(new Error('cancelled by the test')), 300);
    const started = Date.now();
    await assert.rejects(
      uploadFile({ cloud: slow, key, file: f.file, expectedBytes: f.bytes, expectedSha256: f.sha256, signal: controller.signal }),
      /cancelled by the test/,
    );
    assert.ok(Date.now() - started < 2000, `rejected after ${Date.now() - started} ms`);
    assert.equal(await headObject(cloud, key), null);
  });

  it('retries once without server-side encryption when the server refuses it as unsupported', async () => {
    const proxy = await startProxy(cloud.endpoint!, (r) =>
      r.headers['x-amz-server-side-encryption']
        ? { status: 501, code: 'NotImplemented', message: 'A header you provided implies functionality that is not implemented' }
        : undefined,
    );
    try {
      const sse = { ...cloud, endpoint: proxy.endpoint, serverSideEncryption: 'AES256' as const };
      for (const [name, size] of [
        ['sse-small.bin', 1000],
        ['sse-large.bin', 11 * MiB],
      ] as const) {
        const f = await makeFile(dir, name, size);
        const res = await uploadFile({ cloud: sse, key: k(name), file: f.file, expectedBytes: f.bytes, expectedSha256: f.sha256, partSize: 5 * MiB });
        assert.ok(
          res.notes.some((n) => /refused server-side encryption AES256.*without it/.test(n)),
          res.notes.join('; '),
        );
        assert.equal((await verifyObject(cloud, k(name), f)).ok, true);
      }
      assert.equal(proxy.refused.length, 2, 'one refusal per upload, then no SSE header');
    } finally {
      await proxy.close();
    }
  });

  it('wrong credentials: CloudAuthError naming endpoint and bucket, never the secret', async () => {
    const secret = `wrong-${uniqueSuffix()}-${uniqueSuffix()}-secret`;
    const f = await makeFile(dir, 'auth.bin', 1000);
    const check = (err: Error) => {
      assert.ok(err instanceof CloudAuthError, `${err.name}: ${err.message}`);
      assert.equal(err.permanent, true);
      assert.ok(err.message.includes(cloud.endpoint!), 'names the endpoint');
      assert.ok(err.message.includes(cloud.bucket), 'names the bucket');
      for (const s of [secret, cloud.secretAccessKey!]) {
        assert.ok(!err.message.includes(s), 'secret in message');
        assert.ok(!(err.stack ?? '').includes(s), 'secret in stack');
        assert.ok(!JSON.stringify(err).includes(s), 'secret in serialized error');
      }
      return true;
    };
    const badSecret = { ...cloud, secretAccessKey: secret };
    await assert.rejects(uploadFile({ cloud: badSecret, key: k('auth.bin'), file: f.file, expectedBytes: f.bytes, expectedSha256: f.sha256 }), check);
    await assert.rejects(headObject(badSecret, k('auth.bin')), check);
    await assert.rejects(listObjects(badSecret, prefix)[Symbol.asyncIterator]().next(), check);
    // versitygw answers HEAD with an unknown access key by a bare 404: it must not read as "absent".
    const badKey = { ...cloud, accessKeyId: `nosuchkey${uniqueSuffix()}`, secretAccessKey: secret };
    await assert.rejects(headObject(badKey, k('auth.bin')), check);
    await assert.rejects(verifyObject(badKey, k('auth.bin'), f), check);
  });

  it('missing bucket: BucketNotFoundError', async () => {
    const missing = { ...cloud, bucket: `odoo-dr-missing-${uniqueSuffix()}` };
    const f = await makeFile(dir, 'nobucket.bin', 1000);
    const check = (err: Error) => {
      assert.ok(err instanceof BucketNotFoundError, `${err.name}: ${err.message}`);
      assert.ok(err.message.includes(missing.bucket));
      return true;
    };
    await assert.rejects(uploadFile({ cloud: missing, key: 'x/nobucket.bin', file: f.file, expectedBytes: f.bytes, expectedSha256: f.sha256 }), check);
    await assert.rejects(headObject(missing, 'x/nobucket.bin'), check);
    await assert.rejects(listObjects(missing, 'x/')[Symbol.asyncIterator]().next(), check);
    await assert.rejects(downloadFile(missing, 'x/nobucket.bin', path.join(dir, 'nobucket.out')), check);
  });

  it('connection refused: CloudUnavailableError (retryable)', async () => {
    const down = { ...cloud, endpoint: `http://127.0.0.1:${await freePort()}` };
    await assert.rejects(headObject(down, k('x')), (err: Error) => {
      assert.ok(err instanceof CloudUnavailableError, `${err.name}: ${err.message}`);
      assert.equal(err.permanent, false);
      assert.match(err.message, /ECONNREFUSED/);
      assert.ok(err.message.includes(down.endpoint));
      return true;
    });
  });

  it('a bandwidth-limited upload sends the file unchanged, in one PUT and in parts (its pace is measured by bench/, not here)', async () => {
    const limited = { ...cloud, bandwidthLimit: 4 * MiB };
    for (const [name, size] of [
      ['slow-small.bin', 300 * 1024],
      ['slow-large.bin', 11 * MiB],
    ] as const) {
      const f = await makeFile(dir, name, size);
      const res = await uploadFile({ cloud: limited, key: k(name), file: f.file, expectedBytes: f.bytes, expectedSha256: f.sha256, partSize: 5 * MiB });
      assert.equal(res.uploadId === undefined, size < 5 * MiB, `${name}: ${res.uploadId ? 'multipart' : 'one PUT'}`);
      assert.equal((await verifyObject(cloud, k(name), f, { deep: true })).ok, true, `${name}: the object is the file`);
    }
  });

  it('lists page by page and deletes', async () => {
    const keys = Array.from({ length: 30 }, (_, i) => k('many', `obj-${String(i).padStart(2, '0')}`));
    for (const key of keys) await direct.send(new PutObjectCommand({ Bucket: cloud.bucket, Key: key, Body: key }));
    const proxy = await startProxy(cloud.endpoint!);
    try {
      const listed: Array<{ key: string; bytes: number; lastModified: Date | undefined }> = [];
      for await (const o of listObjects({ ...cloud, endpoint: proxy.endpoint }, k('many') + '/', { pageSize: 7 })) listed.push(o);
      assert.deepEqual(
        listed.map((o) => o.key),
        keys,
      );
      assert.ok(listed.every((o) => o.bytes === Buffer.byteLength(o.key) && o.lastModified instanceof Date));
      const pages = proxy.seen.filter((r) => r.method === 'GET' && r.url.searchParams.get('list-type') === '2');
      assert.equal(pages.length, 5, '30 keys, 7 per page');
    } finally {
      await proxy.close();
    }
    await deleteObjects(cloud, [...keys.slice(0, 10), k('many', 'never-existed')]);
    const left: string[] = [];
    for await (const o of listObjects(cloud, k('many') + '/')) left.push(o.key);
    assert.deepEqual(left, keys.slice(10));
    await deleteObjects(cloud, keys.slice(10));
    await deleteObjects(cloud, []);
  });

  describe('downloadFile', () => {
    let f: LocalFile;
    let key: string;
    before(async () => {
      f = await makeFile(dir, 'down.bin', 3 * MiB + 5);
      key = k('down.bin');
      await uploadFile({ cloud, key, file: f.file, expectedBytes: f.bytes, expectedSha256: f.sha256 });
    });

    it('streams to .partial, then renames, when size and SHA-256 match', async () => {
      const dest = path.join(dir, 'dl', 'nested', 'down.bin');
      const got = await downloadFile(cloud, key, dest, { expectedBytes: f.bytes, expectedSha256: f.sha256 });
      assert.deepEqual(got, { bytes: f.bytes, sha256: f.sha256 });
      assert.equal(await sha256OfFile(dest), f.sha256);
      assert.ok(!existsSync(`${dest}.partial`));
    });

    it('refuses a wrong expected SHA-256 or size and removes the partial file', async () => {
      const dest = path.join(dir, 'dl', 'wrong.bin');
      const other = createHash('sha256').update('other').digest('hex');
      await assert.rejects(downloadFile(cloud, key, dest, { expectedSha256: other }), (err: Error) => {
        assert.ok(err instanceof ArtifactCorruptedError, `${err.name}: ${err.message}`);
        assert.ok(err.message.includes(key));
        return true;
      });
      await assert.rejects(downloadFile(cloud, key, dest, { expectedBytes: f.bytes - 1 }), ArtifactCorruptedError);
      assert.deepEqual(
        (await readdir(path.dirname(dest))).filter((n) => n.startsWith('wrong')),
        [],
        'neither dest nor partial',
      );
    });

    it('a missing object is an ArtifactCorruptedError', async () => {
      await assert.rejects(downloadFile(cloud, k('never.bin'), path.join(dir, 'dl', 'never.bin')), (err: Error) => {
        assert.ok(err instanceof ArtifactCorruptedError, `${err.name}: ${err.message}`);
        assert.match(err.message, /missing/);
        return true;
      });
    });

    it('a full disk is a DiskFullError and leaves no partial file', async function () {
      const mnt = path.join(dir, 'tiny');
      await mkdir(mnt);
      try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { stdio: 'pipe' });
      } catch (err) {
        // Needs root, as the whole local stack does (CI and the dev machines run the suite as root).
        assert.fail(`cannot mount a 1 MiB tmpfs to fill a disk for real: ${(err as Error).message.split('\n')[0]}`);
      }
      try {
        await assert.rejects(downloadFile(cloud, key, path.join(mnt, 'down.bin')), (err: Error) => {
          assert.ok(err instanceof DiskFullError, `${err.name}: ${err.message}`);
          assert.ok(err.message.includes(mnt));
          return true;
        });
        assert.deepEqual(await readdir(mnt), []);
      } finally {
        execFileSync('umount', [mnt]);
      }
    });
  });

  it('a completed upload aborts the other uploads of its key, parts and all (an earlier attempt whose abort never reached the server)', async () => {
    const f = await makeFile(dir, 'again.bin', 11 * MiB);
    const key = k('again.bin');
    // The earlier attempt: an upload with a part, left when the server was unreachable for its abort.
    const earlier = await direct.send(new CreateMultipartUploadCommand({ Bucket: cloud.bucket, Key: key }));
    await direct.send(new UploadPartCommand({ Bucket: cloud.bucket, Key: key, UploadId: earlier.UploadId, PartNumber: 1, Body: randomBytes(5 * MiB) }));
    assert.equal((await uploadsFor(key)).length, 1);
    const res = await uploadFile({ cloud, key, file: f.file, expectedBytes: f.bytes, expectedSha256: f.sha256, partSize: 5 * MiB, queueSize: 2 });
    assert.ok(res.uploadId && res.uploadId !== earlier.UploadId);
    assert.deepEqual(await uploadsFor(key), [], 'the earlier upload was aborted with its part');
    assert.equal((await verifyObject(cloud, key, { bytes: f.bytes, sha256: f.sha256 })).ok, true);
  });

  it('aborts multipart uploads left behind, only when older than asked', async () => {
    const key = k('stale', 'left-behind.bin');
    const created = await direct.send(new CreateMultipartUploadCommand({ Bucket: cloud.bucket, Key: key }));
    assert.equal(await abortStaleUploads(cloud, k('stale') + '/', 3_600_000), 0, 'younger than an hour: kept');
    assert.equal((await uploadsFor(key)).length, 1);
    assert.equal(await abortStaleUploads(cloud, k('stale') + '/', 0), 1);
    assert.deepEqual(await uploadsFor(key), []);
    assert.ok(created.UploadId);
  });

  it('mapS3Error: catalogue errors, secrets scrubbed', () => {
    const secret = cloud.secretAccessKey!;
    const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    assert.ok(mapS3Error(enospc, cloud, 'download of x') instanceof DiskFullError);
    const leaky = Object.assign(new Error(`boom ${secret}`), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
    const mapped = mapS3Error(leaky, cloud, `upload using ${secret}`);
    assert.ok(mapped instanceof CloudAuthError);
    assert.ok(!mapped.message.includes(secret) && !(mapped.stack ?? '').includes(secret));
    const slow = Object.assign(new Error('Please reduce your request rate.'), { name: 'SlowDown', $metadata: { httpStatusCode: 503 } });
    assert.ok(mapS3Error(slow, cloud, 'x') instanceof CloudUnavailableError);
    const nb = Object.assign(new Error('The specified bucket does not exist.'), { name: 'NoSuchBucket', $metadata: { httpStatusCode: 404 } });
    assert.ok(mapS3Error(nb, cloud, 'x') instanceof BucketNotFoundError);
  });
});
