import { pino, destination as pinoDestination, stdTimeFunctions, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/** Paths pino blanks out wherever they appear in a log record (connection strings, tokens). */
const REDACTED_PATHS = [
  'password',
  '*.password',
  'connectionString',
  '*.connectionString',
  'databaseUrl',
  '*.databaseUrl',
  'token',
  '*.token',
  'headers.authorization',
  'req.headers.authorization',
];

const URL_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)([^@/?#\s]*)@/gi;
const KEYWORD_PASSWORD = /(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)/gi;

/**
 * Passwords as the connection parser read them, in every spelling they could be quoted in (raw,
 * percent-encoded, quoted-escaped). Redaction by the parsed value catches what no pattern can, such as
 * `p@:/%#s` inside a string that is not a well-formed URL.
 */
const SECRETS = new Set<string>();

export function registerSecret(secret: string): void {
  if (secret.length < 3) return; // a one- or two-character "password" would blank out half of every message
  for (const spelling of [secret, encodeURIComponent(secret), encodeURI(secret), secret.replace(/['\\]/g, '\\$&')]) SECRETS.add(spelling);
}

/** Replaces the password of any connection string (URL or key=value form) and every registered secret with `***`. */
export function redactSecrets(text: string): string {
  let out = text;
  // Longest first, so a secret that contains another is replaced whole.
  for (const secret of [...SECRETS].sort((a, b) => b.length - a.length)) out = out.split(secret).join('***');
  return out.replace(URL_PASSWORD, '$1***@').replace(KEYWORD_PASSWORD, '$1***');
}

export type LogFormat = 'json' | 'logfmt';

/**
 * One logfmt line per pino record (ts=... level=... msg=... key=value), postgres_exporter's default
 * format: nested objects are flattened with dots, values with spaces, quotes or = are quoted.
 */
export function logfmtLine(json: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const { time, level, msg, ...rest } = record;
  const pairs: string[] = [];
  const add = (key: string, value: unknown) => {
    if (value === undefined) return;
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) add(`${key}.${k}`, v);
      return;
    }
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    pairs.push(`${key}=${text === '' || /[\s"=\\]/.test(text) ? JSON.stringify(text) : text}`);
  };
  add('ts', time);
  add('level', level);
  add('msg', msg);
  for (const [key, value] of Object.entries(rest)) add(key, value);
  return `${pairs.join(' ')}\n`;
}

function logfmtStream(target: NodeJS.WritableStream): NodeJS.WritableStream {
  return {
    write(chunk: string | Uint8Array) {
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      for (const line of text.split('\n')) if (line) target.write(logfmtLine(line));
      return true;
    },
  } as unknown as NodeJS.WritableStream;
}

export function createLogger(level: LevelWithSilent = 'info', destination?: NodeJS.WritableStream, format: LogFormat = 'json'): Logger {
  const target: NodeJS.WritableStream = destination ?? (pinoDestination({ dest: 2, sync: true }) as unknown as NodeJS.WritableStream);
  return pino(
    {
      level,
      base: { service: 'pgvector-exporter' },
      redact: { paths: REDACTED_PATHS, censor: '***' },
      formatters: { level: (label) => ({ level: label }) },
      timestamp: stdTimeFunctions.isoTime,
      hooks: {
        // Error messages from pg or node can quote a connection string; scrub every message once, here.
        logMethod(args, method) {
          const scrubbed = args.map((arg) => (typeof arg === 'string' ? redactSecrets(arg) : scrubError(arg)));
          method.apply(this, scrubbed as Parameters<typeof method>);
        },
      },
    },
    format === 'logfmt' ? logfmtStream(target) : target,
  );
}

function scrubError(arg: unknown): unknown {
  if (arg && typeof arg === 'object' && 'err' in arg && (arg as { err: unknown }).err instanceof Error) {
    const err = (arg as { err: Error }).err;
    return { ...arg, err: { type: err.name, message: redactSecrets(err.message), code: (err as { code?: string }).code } };
  }
  if (arg instanceof Error) {
    return { err: { type: arg.name, message: redactSecrets(arg.message), code: (arg as { code?: string }).code } };
  }
  return arg;
}
