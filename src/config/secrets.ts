/**
 * Which configuration values are secrets, and how a value is shown in errors, warnings and the
 * printable configuration: secret values never appear, only their length or "(set, hidden)".
 */
import path from 'node:path';
import { hideUrlCredentials, looksLikePrivateKey } from '../errors';

/**
 * Variables whose values are secrets: never printed, never put into workflow inputs. Beside these,
 * isSecretVariable treats as secret every TEMPORAL_GRPC_META_* header and every name containing KEY,
 * SECRET, TOKEN, PASSWORD or PASSWD, except NON_SECRET_VARIABLES and names of files (see there).
 */
export const SECRET_VARIABLES = new Set([
  'POSTGRES_PASSWORD',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'DR_SMTP_PASSWORD',
  'DR_WEBHOOK_URL', // Slack-style webhook URLs embed their token
  'TEMPORAL_API_KEY',
  'TEMPORAL_TLS_CLIENT_KEY_DATA', // the TLS client's private key itself (PEM)
  'TEMPORAL_CODEC_AUTH', // Authorization header sent to the remote codec server
]);

/**
 * Names that look secret but hold none, so they stay readable in errors and `config check`:
 * - `AWS_ACCESS_KEY_ID`: the public half of an S3 key pair (AWS prints it in its own errors and
 *   CloudTrail); operators need it to see which key is configured.
 * - `DR_ENCRYPTION_KEY`: the seed's name of DR_ENCRYPTION_KEY_FILE, a file name. (A key pasted there
 *   by mistake is still hidden: values shaped like private keys are hidden whatever their name.)
 * - every name ending in `_FILE`, `_PATH` or `_DIR` (DR_ENCRYPTION_KEY_FILE, POSTGRES_PASSWORD_FILE,
 *   DR_SIGNING_KEY_FILE, TEMPORAL_TLS_CLIENT_KEY_PATH, the seed's GDRIVE_TOKEN_FILE…): they name the file
 *   holding the secret, which is what an operator must see to fix it. A value that is not an absolute
 *   path (the secret itself, set in the wrong variable) is hidden all the same (printableValue).
 */
export const NON_SECRET_VARIABLES = new Set(['AWS_ACCESS_KEY_ID', 'DR_ENCRYPTION_KEY']);
const FILE_NAME_VARIABLE = /_(FILE|PATH|DIR)$/i;
const SECRET_NAME = /KEY|SECRET|TOKEN|PASSWORD|PASSWD/i;
const TEMPORAL_GRPC_META = /^TEMPORAL_GRPC_META_/i;
const HIDDEN = '(set, hidden)';

/** The one rule deciding whether a variable's value is a secret (never printed, only its length). */
export function isSecretVariable(name: string): boolean {
  if (SECRET_VARIABLES.has(name) || TEMPORAL_GRPC_META.test(name)) return true;
  if (NON_SECRET_VARIABLES.has(name) || FILE_NAME_VARIABLE.test(name)) return false;
  return SECRET_NAME.test(name);
}

/** A value that must be hidden whatever the variable's name: a private key, or what should be a file name but is not. */
export function secretByValue(name: string, value: string): boolean {
  if (looksLikePrivateKey(value)) return true;
  // `POSTGRES_PASSWORD_FILE=hunter2`: the secret itself in a variable meant for its file name.
  return FILE_NAME_VARIABLE.test(name) && SECRET_NAME.test(name.replace(FILE_NAME_VARIABLE, '')) && !path.isAbsolute(value.trim());
}

/** How a value appears in an error message: quoted, or only its length when it is secret. */
export function printableValue(name: string, raw: string): string {
  if (isSecretVariable(name) || secretByValue(name, raw)) return `a value of ${raw.length} characters (hidden)`;
  const shown = hideUrlCredentials(raw);
  // Userinfo a URL parser would not recognise (e.g. an unencoded "/" in the password): hide the whole value.
  if (/:\/\/[^\s]*@/.test(shown.replace(/:\/\/\*\*\*@/g, ''))) return `a value of ${raw.length} characters (hidden: it looks like a URL with credentials)`;
  return JSON.stringify(shown);
}

/** Scheme and host of a webhook URL, enough to recognise it; its path and query (the token) are hidden. */
function webhookShown(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}/… ${HIDDEN}`;
  } catch {
    return HIDDEN;
  }
}

/** How a value appears in `config check --json`: the same rule as printableValue. */
export function redactValue(name: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (name === 'DR_WEBHOOK_URL') return webhookShown(value);
  if (isSecretVariable(name) || secretByValue(name, value)) return HIDDEN;
  return hideUrlCredentials(value);
}

/** Secrets inside a URL: its userinfo, and for the webhook (whose path is its token) the path and query too. */
export function urlSecrets(name: string, value: string | undefined): string[] {
  if (!value) return [];
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    return [];
  }
  let decoded = url.password;
  try {
    decoded = decodeURIComponent(url.password);
  } catch {
    // malformed escape: the raw form is enough
  }
  const out = [url.username, url.password, decoded];
  if (isSecretVariable(name)) {
    out.push(value.trim(), url.pathname + url.search, url.search);
    const last = url.pathname.split('/').filter(Boolean).pop();
    if (last) out.push(last);
  }
  return out.filter((s) => s.length >= 8 || (s.length >= 4 && (s === url.password || s === decoded)));
}
