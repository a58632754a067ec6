#!/usr/bin/env node
// The local stack's alert catcher: an SMTP server and a Slack-style webhook receiver on 127.0.0.1
// that keep every message they receive, one JSON line each, in <dir>/inbox.jsonl (the demo shows
// them; `GET /messages` on the webhook port returns them). Plain JavaScript: the stack starts it
// before anything is built. Local-stack use only: it accepts any sender and any login.
//   node scripts/alert-catcher.js --dir DIR --smtp-port N --http-port N
'use strict';
const { appendFileSync, mkdirSync, readFileSync } = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { SMTPServer } = require('smtp-server');

function option(name) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0 || !process.argv[i + 1]) {
    console.error(`alert-catcher: --${name} is required`);
    process.exit(2);
  }
  return process.argv[i + 1];
}

const dir = option('dir');
const smtpPort = Number(option('smtp-port'));
const httpPort = Number(option('http-port'));
const inbox = path.join(dir, 'inbox.jsonl');
mkdirSync(dir, { recursive: true });

function keep(message) {
  appendFileSync(inbox, `${JSON.stringify({ at: new Date().toISOString(), ...message })}\n`);
}

const MAX_BYTES = 1024 * 1024;

// Headers and body of a plain-text mail as nodemailer writes it (the only sender here is odoo-dr).
function parseMail(raw) {
  const split = raw.indexOf('\r\n\r\n');
  const head = split < 0 ? raw : raw.slice(0, split);
  let body = split < 0 ? '' : raw.slice(split + 4);
  const headers = {};
  for (const line of head.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  if (/quoted-printable/i.test(headers['content-transfer-encoding'] ?? '')) {
    body = Buffer.from(
      body.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/gi, (_, h) => String.fromCharCode(parseInt(h, 16))),
      'latin1',
    ).toString('utf8');
  } else if (/base64/i.test(headers['content-transfer-encoding'] ?? '')) {
    body = Buffer.from(body, 'base64').toString('utf8');
  }
  return { subject: decodeWords(headers.subject ?? ''), from: headers.from, to: headers.to, text: body.replace(/\r\n/g, '\n').trim() };
}

// RFC 2047 encoded words (non-ASCII subjects).
function decodeWords(value) {
  return value.replace(/\?=\s+=\?/g, '?==?').replace(/=\?utf-8\?([bq])\?([^?]*)\?=/gi, (_, enc, data) =>
    enc.toLowerCase() === 'b'
      ? Buffer.from(data, 'base64').toString('utf8')
      : Buffer.from(
          data.replace(/_/g, ' ').replace(/=([0-9A-F]{2})/gi, (__, h) => String.fromCharCode(parseInt(h, 16))),
          'latin1',
        ).toString('utf8'),
  );
}

const smtp = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS'],
  size: MAX_BYTES,
  onAuth(_auth, _session, callback) {
    callback(null, { user: 'local' });
  },
  onData(stream, session, callback) {
    const chunks = [];
    stream.on('data', (c) => chunks.push(c));
    stream.on('end', () => {
      const mail = parseMail(Buffer.concat(chunks).toString('utf8'));
      keep({ channel: 'email', ...mail, rcpt: session.envelope.rcptTo.map((r) => r.address) });
      callback();
    });
  },
});
smtp.on('error', (err) => console.error(`alert-catcher smtp: ${err.message}`));
smtp.listen(smtpPort, '127.0.0.1');

const web = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/messages') {
    let lines = '';
    try {
      lines = readFileSync(inbox, 'utf8');
    } catch {
      /* nothing received yet */
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify(
        lines
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l)),
      ),
    );
    return;
  }
  if (req.method !== 'POST') {
    res.writeHead(405).end();
    return;
  }
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size <= MAX_BYTES) chunks.push(c);
  });
  req.on('end', () => {
    let payload;
    try {
      payload = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      res.writeHead(400).end('invalid JSON');
      return;
    }
    keep({ channel: 'webhook', path: req.url, text: typeof payload.text === 'string' ? payload.text : JSON.stringify(payload) });
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  });
});
web.listen(httpPort, '127.0.0.1');

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    smtp.close(() => undefined);
    web.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
console.log(`alert-catcher: SMTP 127.0.0.1:${smtpPort}, webhook http://127.0.0.1:${httpPort}/hook, inbox ${inbox}`);
