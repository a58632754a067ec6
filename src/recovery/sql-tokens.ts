/**
 * A small SQL tokenizer for the globals parser: strings ('…' with '' escapes, $tag$…$tag$),
 * quoted identifiers ("…" with "" escapes), comments and psql meta-commands are understood, so a `;`
 * or a newline inside a literal never starts a statement. Nothing here executes anything.
 */

/** A statement that is not applied, for the report. */
export interface Unrecognised {
  line: number;
  text: string;
  reason: string;
}

export type Token =
  | { kind: 'word'; value: string } // bare word, lower-cased as PostgreSQL folds it
  | { kind: 'ident'; value: string } // "quoted identifier"
  | { kind: 'string'; value: string }
  | { kind: 'number'; value: string }
  | { kind: 'punct'; value: string };

export interface Statement {
  line: number;
  text: string;
  tokens: Token[];
  problem?: string;
}

/** NAMEDATALEN - 1: longer names would be truncated by the server and could collide. */
const MAX_NAME_BYTES = 63;

const DOLLAR_TAG = /^\$(?:[A-Za-z_]\w*)?\$/;

/** A statement outside the recognised forms: reported, never applied. */
export class ParseProblem extends Error {}

/** Splits into statements; psql meta-commands (`\restrict key`) and comments are dropped. */
export function splitStatements(sql: string, unrecognised: Unrecognised[]): Statement[] {
  const out: Statement[] = [];
  let tokens: Token[] = [];
  let start = -1;
  let problem: string | undefined;
  let i = 0;
  // Line numbers for reports, counted incrementally (positions asked for only grow).
  let counted = 0;
  let line = 1;
  const lineAt = (pos: number) => {
    for (; counted < pos; counted++) if (sql.charCodeAt(counted) === 10) line++;
    return line;
  };
  const finish = (end: number) => {
    if (tokens.length || problem) out.push({ line: lineAt(start), text: sql.slice(start, end).trim(), tokens, problem });
    tokens = [];
    start = -1;
    problem = undefined;
  };
  const quoted = (q: string, from: number): [string, number] => {
    let value = '';
    let j = from;
    for (;;) {
      const k = sql.indexOf(q, j);
      if (k < 0) throw new ParseProblem('unterminated quote');
      value += sql.slice(j, k);
      if (sql[k + 1] === q) {
        value += q;
        j = k + 2;
      } else return [value, k + 1];
    }
  };
  while (i < sql.length) {
    const c = sql[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '-' && sql[i + 1] === '-') {
      const nl = sql.indexOf('\n', i);
      i = nl < 0 ? sql.length : nl;
      continue;
    }
    if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? sql.length : end + 2;
      continue;
    }
    if (c === '\\' && tokens.length === 0 && !problem) {
      const nl = sql.indexOf('\n', i);
      const end = nl < 0 ? sql.length : nl;
      const command = /^\\(\S*)/.exec(sql.slice(i, end))?.[1] ?? '';
      if (command !== 'restrict' && command !== 'unrestrict') {
        unrecognised.push({ line: lineAt(i), text: `\\${command}`, reason: 'psql meta-command' });
      }
      i = end;
      continue;
    }
    if (start < 0) start = i;
    if (c === ';') {
      finish(i + 1);
      i++;
      continue;
    }
    try {
      if (c === "'") {
        const [value, next] = quoted("'", i + 1);
        tokens.push({ kind: 'string', value });
        i = next;
      } else if (c === '"') {
        const [value, next] = quoted('"', i + 1);
        if (value === '') throw new ParseProblem('zero-length quoted identifier');
        tokens.push({ kind: 'ident', value });
        i = next;
      } else if (c === '$' && DOLLAR_TAG.test(sql.slice(i, i + 64))) {
        const tag = DOLLAR_TAG.exec(sql.slice(i, i + 64))![0];
        const end = sql.indexOf(tag, i + tag.length);
        if (end < 0) throw new ParseProblem('unterminated dollar quote');
        tokens.push({ kind: 'string', value: sql.slice(i + tag.length, end) });
        i = end + tag.length;
      } else if (/[A-Za-z_\u0080-\uffff]/.test(c)) {
        const m = /^[A-Za-z_\u0080-\uffff][\w$\u0080-\uffff]*/.exec(sql.slice(i, i + 1024))![0];
        if (/^[Ee]$/.test(m) && sql[i + 1] === "'") {
          // pg_dumpall never writes E'…' strings: skip to their end (a \' does not end them) and refuse the statement.
          const end = /^E'(?:[^'\\]|\\[\s\S]|'')*'/i.exec(sql.slice(i));
          if (!end) throw new ParseProblem('unterminated quote');
          problem ??= 'E-string literal';
          i += end[0].length;
          continue;
        }
        tokens.push({ kind: 'word', value: m.replace(/[A-Z]+/g, (s) => s.toLowerCase()) });
        i += m.length;
      } else if (/[-0-9]/.test(c) && /^-?\d/.test(sql.slice(i, i + 2))) {
        const m = /^-?\d+(\.\d+)?/.exec(sql.slice(i, i + 64))![0];
        tokens.push({ kind: 'number', value: m });
        i += m.length;
      } else {
        tokens.push({ kind: 'punct', value: c });
        i++;
      }
    } catch (err) {
      if (!(err instanceof ParseProblem)) throw err;
      // Unterminated: the rest of the file is one bad statement.
      problem = err.message;
      finish(sql.length);
      break;
    }
  }
  finish(sql.length);
  return out;
}

/** A cursor over one statement's tokens. */
export class Cursor {
  private pos = 0;
  constructor(private readonly tokens: Token[]) {}
  get done(): boolean {
    return this.pos >= this.tokens.length;
  }
  peekWord(...words: string[]): boolean {
    const t = this.tokens[this.pos];
    return t?.kind === 'word' && words.includes(t.value);
  }
  accept(...words: string[]): boolean {
    if (!this.peekWord(...words)) return false;
    this.pos++;
    return true;
  }
  expect(...words: string[]): string {
    const t = this.tokens[this.pos];
    if (t?.kind !== 'word' || !words.includes(t.value)) throw new ParseProblem(`expected ${words.join(' or ').toUpperCase()}`);
    this.pos++;
    return t.value;
  }
  word(): string {
    const t = this.tokens[this.pos++];
    if (t?.kind !== 'word') throw new ParseProblem('expected a keyword');
    return t.value;
  }
  acceptPunct(p: string): boolean {
    if (this.tokens[this.pos]?.kind !== 'punct' || this.tokens[this.pos]?.value !== p) return false;
    this.pos++;
    return true;
  }
  name(): string {
    const t = this.tokens[this.pos++];
    if (t?.kind !== 'word' && t?.kind !== 'ident') throw new ParseProblem('expected a name');
    if (Buffer.byteLength(t.value) > MAX_NAME_BYTES) throw new ParseProblem(`name longer than ${MAX_NAME_BYTES} bytes`);
    if (t.value.includes('\0')) throw new ParseProblem('NUL in name');
    return t.value;
  }
  string(): string {
    const t = this.tokens[this.pos++];
    if (t?.kind !== 'string') throw new ParseProblem('expected a string literal');
    if (t.value.includes('\0')) throw new ParseProblem('NUL in string');
    return t.value;
  }
  /** A setting value: literal, number, or bare/quoted word (as in `search_path TO public`). */
  value(): string {
    const t = this.tokens[this.pos++];
    if (!t || t.kind === 'punct' || (t.kind === 'word' && t.value === 'default')) throw new ParseProblem('expected a value');
    if (t.value.includes('\0')) throw new ParseProblem('NUL in value');
    return t.value;
  }
  end(): void {
    if (!this.done) throw new ParseProblem('unexpected text at the end');
  }
}
