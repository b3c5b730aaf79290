import type { Collector } from './collector.js';
import { connectionsCollector, type ConnectionsOptions } from './connections.js';
import { connectivityCollector } from './connectivity.js';
import { databaseCollector } from './database.js';
import { embeddingFailuresCollector, type EmbeddingFailuresOptions } from './embedding-failures.js';
import { embeddingsCollector, type EmbeddingsOptions } from './embeddings.js';
import { healthCollector } from './health.js';
import { indexesCollector } from './indexes.js';
import { locksCollector } from './locks.js';
import { queryLogCollector, type QueryLogOptions } from './query-log.js';
import { recallCollector, type RecallOptions } from './recall.js';
import { replicationSlotsCollector } from './replication-slots.js';
import { replicationCollector } from './replication.js';
import { settingsCollector } from './settings.js';
import { statBgwriterCollector } from './stat-bgwriter.js';
import { statCheckpointerCollector } from './stat-checkpointer.js';
import { statementsCollector, type StatementsOptions } from './statements.js';
import { tablesCollector } from './tables.js';

/** What the collectors need to know, as plain options (commands/assembly.ts builds them from the config). */
export interface CollectorsOptions {
  /** Schema of the RAG tables. */
  schema: string;
  /** Tables whose statistics and indexes are watched. */
  managedTables: readonly string[];
  /** Indexes whose absence pg_index_expected_present reports. */
  expectedIndexes: readonly string[];
  /** expectedIndexes are the RAG schema's defaults: expected only where that schema is present. */
  expectedIndexesNeedRagSchema: boolean;
  connections: ConnectionsOptions;
  queryLog: QueryLogOptions;
  embeddings: EmbeddingsOptions;
  embeddingFailures: EmbeddingFailuresOptions;
  recall: RecallOptions;
  statements: StatementsOptions;
}

/**
 * The one list of collectors: name -> factory. Adding a collector is a new file, one line here, its
 * interval and timeout defaults in config/schema.ts (the compiler asks for them), a test and a row in
 * docs/metrics.md. The order here is the order of /metrics.
 */
export const COLLECTOR_FACTORIES = {
  connectivity: () => connectivityCollector(),
  database: () => databaseCollector(),
  replication: () => replicationCollector(),
  connections: (o: CollectorsOptions) => connectionsCollector(o.connections),
  tables: (o: CollectorsOptions) => tablesCollector({ schema: o.schema, tables: o.managedTables }),
  indexes: (o: CollectorsOptions) => indexesCollector({ schema: o.schema, tables: o.managedTables, expectedIndexes: o.expectedIndexes, expectedIndexesNeedRagSchema: o.expectedIndexesNeedRagSchema }),
  health: () => healthCollector(),
  query_log: (o: CollectorsOptions) => queryLogCollector(o.queryLog),
  embeddings: (o: CollectorsOptions) => embeddingsCollector(o.embeddings),
  embedding_failures: (o: CollectorsOptions) => embeddingFailuresCollector(o.embeddingFailures),
  recall: (o: CollectorsOptions) => recallCollector(o.recall),
  statements: (o: CollectorsOptions) => statementsCollector(o.statements),
  locks: () => locksCollector(),
  replication_slots: () => replicationSlotsCollector(),
  settings: () => settingsCollector(),
  stat_bgwriter: () => statBgwriterCollector(),
  stat_checkpointer: () => statCheckpointerCollector(),
} satisfies Record<string, (options: CollectorsOptions) => Collector>;

export type CollectorName = keyof typeof COLLECTOR_FACTORIES;

/**
 * What a collector measures: the `server` (one poll answers for every database: pg_stat_activity,
 * pg_locks, pg_settings, replication) or the `database` it is connected to (its tables, indexes, RAG
 * schema, its row of pg_stat_database, its pg_stat_statements entries). With auto-discovery the
 * database-scoped ones run in every watched database, their samples labelled datname; the server-scoped
 * ones run once, on the primary connection.
 */
export const COLLECTOR_SCOPES: Record<CollectorName, 'server' | 'database'> = {
  connectivity: 'server',
  database: 'database',
  replication: 'server',
  connections: 'server',
  tables: 'database',
  indexes: 'database',
  health: 'database',
  query_log: 'database',
  embeddings: 'database',
  embedding_failures: 'database',
  recall: 'database',
  // pg_stat_statements is one view for the server: read once for every watched database (statements.ts).
  statements: 'server',
  locks: 'server',
  replication_slots: 'server',
  settings: 'server',
  stat_bgwriter: 'server',
  stat_checkpointer: 'server',
};

/** Every collector's name, in COLLECTOR_FACTORIES order. */
export const COLLECTOR_NAMES = Object.keys(COLLECTOR_FACTORIES) as CollectorName[];

/** The named collectors, in COLLECTOR_NAMES order. */
export function createCollectors(names: ReadonlySet<CollectorName> | readonly CollectorName[], options: CollectorsOptions): Collector[] {
  const wanted = new Set(names);
  return COLLECTOR_NAMES.filter((name) => wanted.has(name)).map((name) => COLLECTOR_FACTORIES[name](options));
}
