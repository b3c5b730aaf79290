import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { NoDataError } from '../src/collectors/collector.js';
import { HAS_CHECKPOINTER_SQL, STAT_CHECKPOINTER_SQL, statCheckpointerCollector } from '../src/collectors/stat-checkpointer.js';
import { collectorContext, connect, recordingContext, useDatabaseClient } from './helpers/collector-context.js';
import type { TestDatabase } from './helpers/database.js';

describe('stat_checkpointer collector', () => {
  let client: pg.Client;
  let db: TestDatabase;
  useDatabaseClient((opened) => ({ client, db } = opened));

  it('asks whether pg_stat_checkpointer exists once, not on every poll; again after a failed poll', async () => {
    const version = Number((await client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]!.v);
    const collector = statCheckpointerCollector();
    const statements: string[] = [];
    const poll = () => collector.collect(recordingContext(client, statements)).then((samples) => samples.length, (err: unknown) => err);
    for (let i = 0; i < 3; i++) {
      const result = await poll();
      // Before PostgreSQL 17 "no data" (not a failure), as postgres_exporter; from 17 on its nine counters.
      if (version < 170000) expect(result).toBeInstanceOf(NoDataError);
      else expect(result).toBe(9);
    }
    expect(statements.filter((sql) => sql === HAS_CHECKPOINTER_SQL)).toHaveLength(1);
    expect(statements.filter((sql) => sql === STAT_CHECKPOINTER_SQL)).toHaveLength(version < 170000 ? 0 : 3);

    // A poll that fails (here: its connection is gone) forgets the answer: the server may come back upgraded.
    const gone = await connect(db.url);
    await gone.end();
    const failed: string[] = [];
    if (version < 170000) {
      // Nothing to run while the answer is cached: the connection is not even used.
      await expect(collector.collect(recordingContext(gone, failed))).rejects.toBeInstanceOf(NoDataError);
      expect(failed).toEqual([]);
    } else {
      await expect(collector.collect(collectorContext(gone))).rejects.not.toBeInstanceOf(NoDataError);
      statements.length = 0;
      await poll();
      expect(statements.filter((sql) => sql === HAS_CHECKPOINTER_SQL)).toHaveLength(1);
    }
  });
});
