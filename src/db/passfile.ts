import { createReadStream, stat } from 'node:fs';
import { createRequire } from 'node:module';

/**
 * libpq's `passfile` keyword: the password for host, port, database and user looked up in a password
 * file given in the connection string, with libpq's format and rules (pg reads only PGPASSFILE or
 * ~/.pgpass). The parsing and the permission rule (ignored, with a warning, when group or others can
 * read it) are the pgpass package's, the one pg itself uses for ~/.pgpass.
 */
interface PgpassHelper {
  usePgPass(stats: import('node:fs').Stats, file: string): boolean;
  getPassword(connInfo: { host?: string; port?: number; database?: string; user?: string }, stream: NodeJS.ReadableStream, cb: (password: string | undefined) => void): void;
}

const helper = createRequire(import.meta.url)('pgpass/lib/helper.js') as PgpassHelper;

export interface PassfileTarget {
  host?: string;
  port?: number;
  database?: string;
  user?: string;
}

/**
 * A password function for pg, which calls it at each connect with the connection's parameters (so an
 * edited file is read again, and auto-discovery's per-database pools match their own database): the
 * file's entry for them, or '' when the file is missing, unreadable, too open, or has no matching line
 * (the server then refuses the login, as libpq's "no password supplied").
 */
export function passwordFromFile(file: string): (target: PassfileTarget) => Promise<string> {
  return (target) =>
    new Promise((resolve) => {
      stat(file, (err, stats) => {
        if (err || !helper.usePgPass(stats, file)) {
          resolve('');
          return;
        }
        const { host, port, database, user } = target;
        // libpq matches a Unix-domain socket connection as "localhost".
        const connInfo = { host: !host || host.startsWith('/') ? 'localhost' : host, port: port ?? 5432, database, user };
        helper.getPassword(connInfo, createReadStream(file), (password) => resolve(password ?? ''));
      });
    });
}
