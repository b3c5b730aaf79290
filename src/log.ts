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

/** Replaces the password of any connection string (URL or key=value form) inside a text with `***`. */
export function redactSecrets(text: string): string {
  return text.replace(URL_PASSWORD, '$1***@').replace(KEYWORD_PASSWORD, '$1***');
}

export function createLogger(level: LevelWithSilent = 'info', destination?: NodeJS.WritableStream): Logger {
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
    destination ?? pinoDestination({ dest: 2, sync: true }),
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
