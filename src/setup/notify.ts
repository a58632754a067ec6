/**
 * `odoo-dr setup`'s alert channel checks: the SMTP server answers EHLO (and logs us in), and with
 * `sendTest` a test e-mail and a test webhook post go out. The webhook URL embeds a token: only
 * its host is ever shown.
 */
import { hostname } from 'node:os';
import { smtpTransport } from '../notify';
import { configSecrets, redactValue, type DrConfig } from '../config';
import { scrubSecrets } from '../errors';
import { firstLine, ok, problem, skipped, type SetupCheck } from './report';

export async function checkSmtp(config: DrConfig, sendTest: boolean): Promise<SetupCheck> {
  const { smtp, emails } = config.alerts;
  if (!smtp)
    return skipped('smtp', 'server', emails.length ? 'DR_SMTP_HOST is not set: alert e-mails cannot be sent' : 'no e-mail alerts configured (DR_SMTP_HOST)');
  const where = `${smtp.host}:${smtp.port}`;
  const transport = smtpTransport(smtp);
  const clean = (err: unknown) => scrubSecrets(firstLine(err), configSecrets(config));
  try {
    await transport.verify();
  } catch (err) {
    return problem('smtp', 'server', `${where}: ${clean(err)}`, 'check DR_SMTP_HOST, DR_SMTP_PORT (587 STARTTLS, 465 TLS), DR_SMTP_USER/DR_SMTP_PASSWORD');
  }
  if (!emails.length)
    return problem(
      'smtp',
      'server',
      `${where} answers, but DR_NOTIFICATION_EMAIL is empty: nobody gets the alerts`,
      'set DR_NOTIFICATION_EMAIL="ops@example.com"',
    );
  if (!sendTest)
    return ok(
      'smtp',
      'server',
      `${where} answers${smtp.user ? ` and accepts the login of ${smtp.user}` : ''}; alerts go to ${emails.join(', ')} (--send-test sends a test e-mail)`,
    );
  try {
    const info = await transport.sendMail({
      from: smtp.from ?? `odoo-dr@${hostname()}`,
      to: emails.join(', '),
      subject: '[odoo-dr info] test e-mail from odoo-dr setup',
      text: `This is a test e-mail sent by \`odoo-dr setup --send-test\` on ${hostname()}. Alerts of odoo-dr will arrive the same way.\n`,
    });
    return ok('smtp', 'test e-mail', `sent to ${emails.join(', ')} through ${where} (${String(info.response ?? 'accepted').split('\n')[0]})`);
  } catch (err) {
    return problem(
      'smtp',
      'test e-mail',
      `${where} refused the test e-mail: ${clean(err)}`,
      'check DR_SMTP_FROM (the server may refuse the sender) and DR_NOTIFICATION_EMAIL',
    );
  } finally {
    transport.close();
  }
}

export async function checkWebhook(config: DrConfig, sendTest: boolean): Promise<SetupCheck> {
  const url = config.alerts.webhookUrl;
  if (!url) return skipped('webhook', 'post', 'no webhook configured (DR_WEBHOOK_URL)');
  const shown = redactValue('DR_WEBHOOK_URL', url) ?? '(set, hidden)';
  if (!sendTest) return skipped('webhook', 'post', `${shown}: not posted to (--send-test posts a test message)`);
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: `*[odoo-dr info] test message from odoo-dr setup*\nSent by \`odoo-dr setup --send-test\` on ${hostname()}.` }),
      signal: AbortSignal.timeout(15_000),
    });
    if (!res.ok) return problem('webhook', 'post', `${shown} answered HTTP ${res.status}`, 'check DR_WEBHOOK_URL (a revoked webhook answers 403/404)');
    return ok('webhook', 'post', `test message posted to ${shown} (HTTP ${res.status})`);
  } catch (err) {
    return problem(
      'webhook',
      'post',
      `${shown}: ${scrubSecrets(firstLine(err), configSecrets(config))}`,
      'check DR_WEBHOOK_URL and that this host may reach it (proxy, firewall)',
    );
  }
}
