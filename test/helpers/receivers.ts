/** Real alert receivers for tests: an SMTP server (smtp-server, in-process) and a webhook receiver (node:http). */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface Mail {
  to: string[];
  data: string;
}

export interface Receivers {
  mails: Mail[];
  hooks: Array<{ path: string; text: string }>;
  smtpPort: number;
  httpPort: number;
  close(): Promise<void>;
}

export async function startReceivers(): Promise<Receivers> {
  const mails: Mail[] = [];
  const hooks: Receivers['hooks'] = [];
  const smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    onData(stream, session, callback) {
      let data = '';
      stream.on('data', (c: Buffer) => (data += c.toString()));
      stream.on('end', () => {
        mails.push({ to: session.envelope.rcptTo.map((r) => r.address), data });
        callback();
      });
    },
  });
  smtp.listen(0, '127.0.0.1');
  await once(smtp.server, 'listening');
  const http: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      hooks.push({ path: req.url ?? '', text: (JSON.parse(body) as { text: string }).text });
      res.writeHead(200).end('ok');
    });
  });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  return {
    mails,
    hooks,
    smtpPort: (smtp.server.address() as AddressInfo).port,
    httpPort: (http.address() as AddressInfo).port,
    close: async () => {
      await new Promise<void>((r) => smtp.close(() => r()));
      await new Promise<void>((r) => http.close(() => r()));
    },
  };
}

/** Quoted-printable soft line breaks and escapes undone, so a test can match a mail's text. */
export function mailText(data: string): string {
  return data.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}
