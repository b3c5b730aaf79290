import { COLLECTOR_NAMES, type Config, type CollectorName } from '../config/schema.js';
import type { Collector } from './collector.js';
import { connectionsCollector, connectionsOptions } from './connections.js';
import { connectivityCollector } from './connectivity.js';
import { databaseCollector } from './database.js';
import { indexesCollector, indexesOptions } from './indexes.js';
import { replicationCollector } from './replication.js';
import { embeddingFailuresCollector } from './embedding-failures.js';
import { embeddingsCollector } from './embeddings.js';
import { healthCollector } from './health.js';
import { queryLogCollector } from './query-log.js';
import { recallCollector } from './recall.js';
import { statementsCollector } from './statements.js';
import { tablesCollector, tablesOptions } from './tables.js';
import { locksCollector } from './locks.js';
import { replicationSlotsCollector } from './replication-slots.js';
import { settingsCollector } from './settings.js';
import { statBgwriterCollector } from './stat-bgwriter.js';
import { statCheckpointerCollector } from './stat-checkpointer.js';

/**
 * The one list of collectors: name -> factory from the validated config. Adding a collector is a new
 * file, one line here, a test and a row in docs/metrics.md. The config schema's COLLECTOR_NAMES must
 * match these keys (a test checks).
 */
export const COLLECTOR_FACTORIES: Record<CollectorName, (config: Config) => Collector> = {
  connectivity: () => connectivityCollector(),
  database: () => databaseCollector(),
  replication: () => replicationCollector(),
  connections: (config) => connectionsCollector(connectionsOptions(config)),
  tables: (config) => tablesCollector(tablesOptions(config)),
  indexes: (config) => indexesCollector(indexesOptions(config)),
  health: () => healthCollector(),
  query_log: (config) =>
    queryLogCollector({
      buckets: config.query_log.buckets,
      queryTypes: config.query_log.query_types,
      lookback: config.query_log.lookback,
      batchRows: config.query_log.batch_rows,
    }),
  embeddings: (config) => embeddingsCollector(config.embeddings),
  embedding_failures: (config) => embeddingFailuresCollector({ gracePeriodMs: config.embedding_failures.grace_period }),
  recall: (config) =>
    recallCollector({
      sampleSize: config.recall.sample_size,
      topK: config.recall.top_k,
      efSearch: config.recall.ef_search,
      probes: config.recall.probes,
      indexPatterns: config.recall.indexes,
      dimensions: config.embeddings.dimensions,
    }),
  statements: (config) => statementsCollector({ topN: config.statements.top_n, queryText: config.statements.query_text }),
  locks: () => locksCollector(),
  replication_slots: () => replicationSlotsCollector(),
  settings: () => settingsCollector(),
  stat_bgwriter: () => statBgwriterCollector(),
  stat_checkpointer: () => statCheckpointerCollector(),
};

/** The enabled collectors, in COLLECTOR_NAMES order. */
export function enabledCollectors(config: Config): Collector[] {
  return COLLECTOR_NAMES.filter((name) => config.collectors[name].enabled).map((name) => COLLECTOR_FACTORIES[name](config));
}
