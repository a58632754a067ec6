/**
 * Alerts through the configured channels: e-mail (nodemailer) and a Slack-style webhook
 * (`{"text": …}`). A channel that fails is reported, never thrown: an alert problem must not turn
 * a finished backup into a failed one. Messages never contain secrets.
 */
import { hostname } from 'node:os';
import nodemailer from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport';
import { configSecrets, type DrConfig } from './config';
import { scrubSecrets } from './errors';
import type { Alert, AlertDelivery, Notifier } from './ports';

export type { Alert, AlertDelivery, Severity } from './ports';

/** The notifier port over the configured channels (what `sendAlert` does, for use cases that take a `Notifier`). */
export function configNotifier(config: DrConfig): Notifier {
  return { send: (alert) => sendAlert(config, alert) };
}

/** The SMTP transport alerts (and `setup`'s checks) use: TLS on 465, STARTTLS when offered, 15 s timeouts. */
export function smtpTransport(smtp: NonNullable<DrConfig['alerts']['smtp']>): nodemailer.Transporter<SMTPTransport.SentMessageInfo> {
  return nodemailer.createTransport({
    host: smtp.host,
    port: smtp.port,
    secure: smtp.port === 465,
    ...(smtp.user ? { auth: { user: smtp.user, pass: smtp.password ?? '' } } : {}),
    connectionTimeout: 15_000,
    greetingTimeout: 15_000,
  });
}

export async function sendAlert(config: DrConfig, alert: Alert): Promise<AlertDelivery> {
  const secrets = configSecrets(config);
  const subject = `[odoo-dr ${alert.severity}] ${alert.subject}`;
  const text = scrubSecrets(alert.text, secrets);
  const delivery: AlertDelivery = { email: 'not configured', webhook: 'not configured' };

  const { smtp, emails, webhookUrl } = config.alerts;
  if (smtp && emails.length) {
    try {
      const transport = smtpTransport(smtp);
      await transport.sendMail({ from: smtp.from ?? `odoo-dr@${hostname()}`, to: emails.join(', '), subject, text });
      delivery.email = 'sent';
    } catch (err) {
      delivery.email = `failed: ${scrubSecrets((err as Error).message, secrets)}`;
    }
  }
  if (webhookUrl) {
    try {
      const res = await fetch(webhookUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ text: `*${subject}*\n${text}` }),
        signal: AbortSignal.timeout(15_000),
      });
      delivery.webhook = res.ok ? 'sent' : `failed: HTTP ${res.status}`;
    } catch (err) {
      // The URL embeds a token: never echo it.
      delivery.webhook = `failed: ${scrubSecrets((err as Error).message, secrets)}`;
    }
  }
  return delivery;
}
