/**
 * The value types of configuration variables: each parses a raw string into its value, or reports
 * what is wrong naming the variable (secret values shown by their length only, see printableValue).
 */
import path from 'node:path';
import { z } from 'zod';
import { parseTimeOfDay } from '../automation/schedules';
import { ageRecipientProblem } from '../crypto/age-keys';
import { looksLikePrivateKey } from '../errors';
import { printableValue } from './secrets';

export type Check = z.ZodType<unknown, string>;

/** Returned by a parser to report specific problems (each naming the variable) instead of "must be …". */
export class Refused {
  constructor(readonly problems: string[]) {}
}

export function custom<T>(what: string, parse: (raw: string, name: string) => T | Refused | undefined): (name: string) => z.ZodType<T, string> {
  return (name) =>
    z.string().transform((raw, ctx) => {
      const value = parse(raw.trim(), name);
      if (value instanceof Refused) {
        for (const message of value.problems) ctx.addIssue({ code: 'custom', message });
        return z.NEVER;
      }
      if (value === undefined) {
        ctx.addIssue({ code: 'custom', message: `${name} must be ${what}, got ${printableValue(name, raw)}` });
        return z.NEVER;
      }
      return value;
    });
}

/** A NUL or a line break in a path: refused (the path would be cut short, or split in two by a shell or a log line). */
export function pathCharacterProblem(what: string, name: string, value: string): string | undefined {
  if (value.includes('\0')) return `${what} must not contain a NUL character, got ${printableValue(name, value)}`;
  if (/[\n\r]/.test(value)) return `${what} must not contain a line break, got ${printableValue(name, value)}`;
  return undefined;
}

export const wholeNumber = (min: number, max: number) =>
  custom(`a whole number from ${min} to ${max}`, (raw) => {
    if (!/^\d+$/.test(raw)) return undefined;
    const n = Number(raw);
    return n >= min && n <= max ? n : undefined;
  });

export const boolean = custom('true or false', (raw) => {
  const v = raw.toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  return undefined;
});

/** `DAILY/WEEKLY/MONTHLY` counts (e.g. `7/4/3`), or empty for none. */
export const gfsRule = custom(
  'DAILY/WEEKLY/MONTHLY counts such as 7/4/3, or empty for none',
  (raw): { daily: number; weekly: number; monthly: number } | null | undefined => {
    if (raw === '') return null;
    const m = /^(\d{1,4})\/(\d{1,4})\/(\d{1,4})$/.exec(raw);
    return m ? { daily: Number(m[1]), weekly: Number(m[2]), monthly: Number(m[3]) } : undefined;
  },
);

export const text = custom('a non-empty text', (raw) => (raw === '' ? undefined : raw));
export const optionalText = custom('a text', (raw) => raw);

export const absolutePath = custom('an absolute path', (raw, name) => {
  const bad = pathCharacterProblem(name, name, raw);
  if (bad) return new Refused([bad]);
  return path.isAbsolute(raw) ? path.normalize(raw) : undefined;
});

export const list = custom('a comma- or space-separated list', (raw) => raw.split(/[\s,]+/).filter(Boolean));

export const pathList = custom('a comma-separated list of absolute paths', (raw, name) => {
  const items = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = items.flatMap((p, i) => pathCharacterProblem(`${name} entry #${i + 1}`, name, p) ?? []);
  if (bad.length) return new Refused(bad);
  return items.every((p) => path.isAbsolute(p)) ? items.map((p) => path.normalize(p)) : undefined;
});

export const emails = custom('a comma-separated list of e-mail addresses', (raw) => {
  const items = raw.split(/[\s,]+/).filter(Boolean);
  return items.every((e) => /^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(e)) ? items : undefined;
});

export const httpUrl = custom('an http(s) URL', (raw) => {
  if (raw === '') return '';
  try {
    const url = new URL(raw);
    return url.protocol === 'http:' || url.protocol === 'https:' ? raw : undefined;
  } catch {
    return undefined;
  }
});

/** `10M`, `512K`, `1G`, `1048576` (bytes per second); empty = unlimited. */
export const bandwidth = custom('empty (unlimited) or a rate in bytes per second like 10M, 512K or 1G', (raw) => {
  if (raw === '' || raw === '0') return null;
  const m = /^(\d+(?:\.\d+)?)\s*([KMG]?)(?:i?B)?(?:\/s)?$/i.exec(raw);
  if (!m) return undefined;
  const unit = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G'];
  const value = Math.round(Number(m[1]) * unit);
  return value > 0 ? value : undefined;
});

/** age X25519 recipients (`age1…`, bech32 with a valid checksum); each bad one is reported with its position. */
export const ageRecipients = custom('a comma- or space-separated list of age recipients (age1…)', (raw, name) => {
  const items = raw.split(/[\s,]+/).filter(Boolean);
  const problems = items.flatMap((r, i) => {
    const problem = ageRecipientProblem(r);
    if (!problem) return [];
    // Recipients are public, so the bad one is quoted; something shaped like a private key never is.
    const shown = /^AGE-/i.test(r) || looksLikePrivateKey(r) ? '' : ` ${JSON.stringify(r)}`;
    return [`${name} recipient #${i + 1} of ${items.length}${shown} ${problem}`];
  });
  return problems.length ? new Refused(problems) : items;
});

/** OpenSSH Ed25519 public keys (`ssh-ed25519 AAAA… [comment]`), separated by commas or newlines. */
export const sshPublicKeys = custom('a comma-separated list of public keys like "ssh-ed25519 AAAAC3Nza… comment"', (raw) => {
  const items = raw
    .split(/[,\n]+/)
    .map((k) => k.trim())
    .filter(Boolean);
  return items.length > 0 && items.every((k) => /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43}=?(?: .*)?$/.test(k)) ? items : undefined;
});

export const oneOf = <T extends string>(...values: T[]) => custom(`one of ${values.join(', ')}`, (raw) => (values.includes(raw as T) ? (raw as T) : undefined));

/** zstd's advanced compression parameters (`zstd --zstd=…`), long and short names. */
const ZSTD_PARAMETERS =
  /^(strategy|strat|windowLog|wlog|chainLog|clog|hashLog|hlog|searchLog|slog|minMatch|mml|targetLength|tlen|overlapLog|ovlog|ldmHashLog|lhlog|ldmMinMatch|lmml|ldmBucketSizeLog|lblog|ldmHashRateLog|lhrlog)=\d{1,2}$/;

/** `name=value,…` for `zstd --zstd=`; `none`: none (''). Each name is one zstd knows (nothing else reaches its command line). */
export const zstdParameters = custom('zstd parameters name=value,… (e.g. strategy=5,windowLog=18) or none', (raw) => {
  if (raw === 'none') return '';
  return raw.split(',').every((p) => ZSTD_PARAMETERS.test(p)) ? raw : undefined;
});

/** `HH:MM` on a 24-hour clock. */
export const timeOfDay = custom('a time of day HH:MM from 00:00 to 23:59', (raw, name) => {
  try {
    return parseTimeOfDay(raw, name);
  } catch (err) {
    return new Refused([(err as Error).message]);
  }
});

/** An IANA time zone (`Europe/Brussels`, `UTC`), in its canonical spelling (Temporal's server is case-sensitive). */
export const timeZone = custom('an IANA time zone name like UTC or Europe/Brussels', (raw) => {
  // The default, already canonical: ICU's time zone data costs ~10 ms of CPU to load, at every CLI start.
  if (raw === 'UTC') return raw;
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: raw }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
});

/** The seed's DR_MONITORING_INTERVAL is in seconds; schedules work in whole minutes. */
export const monitoringSeconds = custom('a whole number of seconds from 60 to 86400', (raw, name) => {
  if (!/^\d+$/.test(raw)) return undefined;
  const n = Number(raw);
  if (n < 60 || n > 86400) return undefined;
  if (n % 60 !== 0) return new Refused([`${name} must be a whole number of minutes in seconds (a multiple of 60), got ${printableValue(name, raw)}`]);
  return n;
});

/** PostgreSQL identifiers as Odoo uses them for database names and roles. */
export const pgName = custom('a PostgreSQL name of at most 63 bytes', (raw) =>
  raw !== '' && Buffer.byteLength(raw) <= 63 && !raw.includes('\0') ? raw : undefined,
);

/** Longest scratch suffix: `<tenant><suffix>_<id>` (id up to 24) must leave the tenant name room in 63 bytes. */
const MAX_SCRATCH_SUFFIX = 32;

/** The scratch database suffix: only the characters Odoo accepts in database names (odoo/service/db.py DB_NAME_RE). */
export const scratchSuffix = custom('a database name suffix', (raw, name) => {
  const problems: string[] = [];
  const bad = [...new Set(raw.replace(/[A-Za-z0-9_.-]/g, ''))];
  if (raw === '') return undefined;
  if (bad.length) {
    problems.push(
      `${name} may contain only letters, digits, "_", "." and "-" (Odoo refuses other characters in database names), ` +
        `got ${printableValue(name, raw)} with ${bad.map((c) => JSON.stringify(c)).join(', ')}`,
    );
  }
  if (Buffer.byteLength(raw) > MAX_SCRATCH_SUFFIX) {
    problems.push(
      `${name} must be at most ${MAX_SCRATCH_SUFFIX} characters (scratch databases are named <tenant><suffix>_<id> within PostgreSQL's 63 bytes), got ${Buffer.byteLength(raw)}`,
    );
  }
  return problems.length ? new Refused(problems) : raw;
});
