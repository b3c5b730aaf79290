import type pg from 'pg';

/**
 * A cap on the connections several pools hold open together: with auto-discovery, one pool of one
 * connection per watched database, and a server with 50 databases must not see 50 of the exporter's
 * sessions. A pool holds one share of the budget from its first connection until it has none left. While
 * pools wait for a share, connections are not kept idle: a pool whose connection is idle closes it at
 * once, and a connection given back is closed instead of kept, so the shares go round instead of
 * sitting in idle sessions. A pool waits for a share at most its connect timeout.
 */
export class ConnectionBudget {
  private used = 0;
  private readonly waiting: Array<() => void> = [];
  /** Pools that hold a share, each able to say whether its connection is idle and to close it. */
  private readonly holders = new Set<{ idle(): boolean; close(): void }>();

  constructor(readonly max: number) {}

  /** Shares held now: the pools with a connection open or opening. */
  get inUse(): number {
    return this.used;
  }

  /** Whether a pool is waiting for a share: then a connection given back is closed, not kept idle. */
  get contended(): boolean {
    return this.waiting.length > 0;
  }

  acquire(timeoutMs: number): Promise<void> {
    if (this.used < this.max) {
      this.used += 1;
      return Promise.resolve();
    }
    const waiting = new Promise<void>((resolve, reject) => {
      const grant = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        const at = this.waiting.indexOf(grant);
        if (at >= 0) this.waiting.splice(at, 1);
        reject(new ConnectionBudgetError(this.max));
      }, timeoutMs);
      timer.unref?.();
      this.waiting.push(grant);
    });
    // An idle connection elsewhere gives its share up now rather than at its idle timeout.
    for (const holder of this.holders) {
      if (holder.idle()) {
        holder.close();
        break;
      }
    }
    return waiting;
  }

  release(): void {
    const next = this.waiting.shift();
    // The share passes straight to the next waiter: `used` stays the same.
    if (next) next();
    else this.used = Math.max(0, this.used - 1);
  }

  hold(holder: { idle(): boolean; close(): void }): void {
    this.holders.add(holder);
  }

  unhold(holder: { idle(): boolean; close(): void }): void {
    this.holders.delete(holder);
  }
}

/** Every share of the budget stayed taken for the whole connect timeout. */
export class ConnectionBudgetError extends Error {
  constructor(max: number) {
    super(`no connection free under auto_discover.max_connections (${max}) within the connect timeout; the database itself was not asked`);
    this.name = 'ConnectionBudgetError';
  }
}

/**
 * Ends a session of `applicationName` by its pid through another pool (not under the budget) and
 * resolves once the server says it has ended (pg_terminate_backend's wait, PostgreSQL 14+) or after
 * `timeoutMs`. The application_name and user must still match, so a pid reused by another program's
 * session is left alone.
 */
export function sessionTerminator(pool: pg.Pool, applicationName: string, timeoutMs: number): (pid: number) => Promise<void> {
  return async (pid) => {
    await pool.query(
      `SELECT pg_terminate_backend(pid, $3)
         FROM pg_stat_activity
        WHERE pid = $1 AND application_name = $2 AND usename = current_user`,
      [pid, applicationName, timeoutMs],
    );
  };
}

/**
 * Makes a pool (max 1) take a share of the budget before it opens a connection, and give it back when
 * its last session has ended. Checking out the pool's open connection needs no new share.
 *
 * A session ends on the server, not when its socket closes. A connection closed gracefully (Terminate)
 * sees its socket close only after its backend has left pg_stat_activity. A connection its user destroys
 * (release(true): a poll abandoned mid-statement, a broken connection) has its socket torn down at once,
 * and its backend runs on until it next writes to the client (pg_sleep never does): `endSession` ends it
 * and waits, and until then its share stays taken and the pool opens no other connection.
 */
export function limitPool(pool: pg.Pool, budget: ConnectionBudget, waitMs: number, endSession: (pid: number) => Promise<void>): pg.Pool {
  let holding: Promise<void> | undefined;
  // Sessions open on the server: a closing client leaves pg-pool's count before its session ends, and a
  // new one opened meanwhile would be a second session under one share.
  let live = 0;
  let closing: Array<() => void> = [];
  /** connect() calls between asking for the share and having a connection: the share stays meanwhile. */
  let pending = 0;
  const connect = pool.connect.bind(pool) as () => Promise<pg.PoolClient>;
  const holder = {
    idle: () => pool.idleCount > 0 && pool.waitingCount === 0 && pool.totalCount === pool.idleCount && pending === 0,
    // Checking out the idle connection and destroying it closes it; 'remove' then gives the share back.
    close: () => {
      void connect().then(
        (client) => client.release(true),
        () => undefined,
      );
    },
  };
  const dropIfUnused = () => {
    if (!holding || pool.totalCount > 0 || live > 0 || pending > 0) return;
    const held = holding;
    holding = undefined;
    budget.unhold(holder);
    // A share still being waited for is given back once granted.
    void held.then(
      () => budget.release(),
      () => undefined,
    );
  };
  pool.on('connect', () => {
    live += 1;
  });
  /** Connections destroyed by their user: their backend may outlive the socket. */
  const destroyed = new WeakSet<pg.PoolClient>();
  const ended = () => {
    live = Math.max(0, live - 1);
    if (live === 0) {
      for (const resolve of closing) resolve();
      closing = [];
    }
    dropIfUnused();
  };
  pool.on('remove', (client) => {
    const pid = (client as unknown as { processID?: number }).processID;
    if (!destroyed.has(client) || !pid) return ended();
    // Counted live until the server has ended it (or could not be asked: then nothing more can be known).
    void endSession(pid)
      .catch(() => undefined)
      .finally(ended);
  });
  const limited = async (): Promise<pg.PoolClient> => {
    pending += 1;
    try {
      if (!holding) {
        holding = budget.acquire(waitMs);
        holding.catch(() => undefined);
        budget.hold(holder);
      }
      const share = holding;
      try {
        await share;
      } catch (err) {
        if (holding === share) {
          holding = undefined;
          budget.unhold(holder);
        }
        throw err;
      }
      // The last session still closing: wait for its end before opening the next.
      if (pool.totalCount === 0 && live > 0) await new Promise<void>((resolve) => closing.push(resolve));
      const client = await connect();
      const release = client.release.bind(client);
      // Kept for this pool's next poll if one waits; closed if another pool waits for a share.
      client.release = (destroy?: boolean | Error) => {
        if (destroy) destroyed.add(client);
        release(destroy ?? (budget.contended && pool.waitingCount === 0 ? true : undefined));
      };
      return client;
    } finally {
      pending -= 1;
      // A connection that failed to open leaves the pool empty: the share goes back.
      dropIfUnused();
    }
  };
  // pool.query() calls connect() with a callback; the pollers use the promise.
  type Callback = (err: Error | undefined, client?: pg.PoolClient, done?: (release?: unknown) => void) => void;
  const connectLimited = (callback?: Callback) => {
    const connected = limited();
    if (!callback) return connected;
    connected.then(
      (client) => callback(undefined, client, (release) => client.release(release as boolean | Error | undefined)),
      (err: Error) => callback(err),
    );
    return undefined;
  };
  (pool as unknown as { connect: typeof connectLimited }).connect = connectLimited;
  return pool;
}
