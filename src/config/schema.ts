import { COLLECTOR_NAMES, type CollectorName } from '../collectors/index.js';
import { JOB_NAMES, type JobName } from '../jobs/index.js';
import { parseAuthModules } from './auth-modules.js';
import {
  MAX_AGE_MS,
  parseBoolean,
  parseBuckets,
  parseDurationIn,
  parseHttpPath,
  parseCron,
  parseDuration,
  parseEnum,
  parseInteger,
  parseListenAddress,
  parseNumber,
  parseString,
  parseStringList,
  parseTimeOfDay,
  parseTimezone,
} from './values.js';

/**
 * The one declarative list of settings: YAML key, type, default, environment variable, flag and help.
 * The loader, the CLI's flag parser and the README's configuration table all read this list, and the
 * Config type is derived from it (ConfigOf below), so the two cannot drift.
 * Precedence: flag > environment variable > config file > default.
 * The collector and job names come from their factory maps (collectors/index.ts, jobs/index.ts).
 */
export interface FieldSpec<K extends string = string, T = unknown, D = unknown> {
  /** Dotted YAML path, e.g. "collectors.connections.interval". */
  key: K;
  /** Human-readable type for docs and error messages. */
  type: string;
  parse: (value: unknown) => T;
  /** Default as it would be written in YAML (undefined = unset: the key is optional in Config). */
  default: D;
  env?: string;
  flag?: string;
  /** Older spellings of the flag, still accepted (e.g. --log-level beside postgres_exporter's --log.level). */
  flagAliases?: string[];
  help: string;
}

/**
 * Declares one setting, keeping its key and parsed type for ConfigOf. A field whose default is
 * undefined is optional in Config; every other field always has a value.
 */
function field<const K extends string, T, const D>(spec: FieldSpec<K, T, D>): FieldSpec<K, T, D> {
  return spec;
}

/** One entry of recall.indexes: a pattern, with the recall.* settings it overrides for the indexes it matches. */
export interface RecallIndexSetting {
  index: string;
  top_k?: number;
  sample_size?: number;
  ef_search?: number;
  probes?: number;
}

const RECALL_INDEX_KEYS: Record<Exclude<keyof RecallIndexSetting, 'index'>, (v: unknown) => number> = {
  top_k: (v) => parseInteger(v, 1, 1000),
  sample_size: (v) => parseInteger(v, 1, 1000),
  ef_search: (v) => parseInteger(v, 0, 1000),
  probes: (v) => parseInteger(v, 0, 100000),
};

/** recall.indexes: strings (patterns; comma-separated from a flag or variable) or maps with per-pattern settings. */
function parseRecallIndexes(value: unknown): RecallIndexSetting[] {
  if (!Array.isArray(value)) return parseStringList(value).map((index) => ({ index }));
  return value.map((item, i) => {
    const where = `item ${i + 1}`;
    if (item === null || typeof item !== 'object' || Array.isArray(item)) {
      try {
        return { index: parseString(item).trim() };
      } catch {
        throw new Error(`${where}: expected a pattern or a map with index, top_k, sample_size, ef_search, probes`);
      }
    }
    const entry = item as Record<string, unknown>;
    if (typeof entry.index !== 'string' || entry.index.trim() === '') throw new Error(`${where}: index: expected a pattern (schema.index, * wildcards)`);
    const setting: RecallIndexSetting = { index: entry.index.trim() };
    for (const [key, raw] of Object.entries(entry)) {
      if (key === 'index') continue;
      const parse = RECALL_INDEX_KEYS[key as keyof typeof RECALL_INDEX_KEYS];
      if (!parse) throw new Error(`${where}: unknown key "${key}" (expected index, ${Object.keys(RECALL_INDEX_KEYS).join(', ')})`);
      try {
        setting[key as keyof typeof RECALL_INDEX_KEYS] = parse(raw);
      } catch (err) {
        throw new Error(`${where}: ${key}: ${(err as Error).message}`);
      }
    }
    return setting;
  });
}

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
/** json: pino's records; logfmt: key=value lines, postgres_exporter's default. */
export const LOG_FORMATS = ['json', 'logfmt'] as const;

/** The RAG schema's vector index; checked by default only where that schema is present (collectors/indexes.ts). */
export const DEFAULT_EXPECTED_INDEXES = ['idx_embeddings_vector'];

/** The RAG tables of the data model plus the log tables the exporter and the jobs read. */
export const DEFAULT_MANAGED_TABLES = [
  'framework_documents',
  'chunk_embeddings',
  'framework_metadata',
  'key_concepts',
  'document_concepts',
  'source_lines',
  'query_performance_log',
  'query_performance_archive',
  'maintenance_log',
];

/** Latency buckets (seconds) include every service-level threshold: 0.2/0.5 s vector, 0.5/1 s hybrid, 0.3 s insert. */
export const DEFAULT_QUERY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10];

interface CollectorDefaults {
  interval: string;
  timeout: string;
  enabled?: boolean;
  help: string;
}

const COLLECTOR_DEFAULTS: Record<CollectorName, CollectorDefaults> = {
  connectivity: { interval: '15s', timeout: '5s', help: 'pg_up, server and pgvector versions, the exporter pool' },
  database: { interval: '30s', timeout: '10s', help: 'pg_stat_database, database size, transaction-ID age' },
  replication: { interval: '15s', timeout: '5s', help: 'role, standby lag, WAL receiver' },
  connections: { interval: '15s', timeout: '5s', help: 'pg_stat_activity by state and application, utilisation' },
  tables: { interval: '1m', timeout: '10s', help: 'pg_stat_user_tables for the managed tables' },
  indexes: { interval: '2m', timeout: '15s', help: 'index validity, size, scans; vector index parameters' },
  health: { interval: '1m', timeout: '15s', help: 'system_health_check() per component' },
  query_log: { interval: '15s', timeout: '10s', help: 'query_performance_log into rag_query_duration_seconds' },
  embeddings: { interval: '2m', timeout: '30s', help: 'documents, embeddings, missing and wrong embeddings' },
  embedding_failures: { interval: '1m', timeout: '30s', help: 'failed embedding generations: log rows with an error, documents without an embedding past the grace period' },
  recall: { interval: '10m', timeout: '2m', enabled: false, help: 'pgvector recall: index top-k against exact top-k' },
  statements: { interval: '1m', timeout: '10s', help: 'pg_stat_statements for pgvector distance operators' },
  // postgres_exporter's collectors of the same names (its mixin's alerts and overview dashboard use them).
  locks: { interval: '15s', timeout: '5s', help: 'pg_locks_count per database and lock mode' },
  replication_slots: { interval: '15s', timeout: '5s', help: 'pg_replication_slots: active, retained WAL, WAL status' },
  settings: { interval: '5m', timeout: '5s', help: 'numeric pg_settings_* (max_locks_per_transaction, autovacuum thresholds, ...)' },
  stat_bgwriter: { interval: '30s', timeout: '5s', help: 'pg_stat_bgwriter counters (checkpoints, buffers)' },
  stat_checkpointer: { interval: '30s', timeout: '5s', enabled: false, help: 'pg_stat_checkpointer counters (PostgreSQL 17+; off by default, as in postgres_exporter)' },
};

interface JobDefaults {
  schedule: string;
  enabled: boolean;
  statementTimeout: string;
  /** Default 5s: a maintenance statement waiting for a lock must not queue the service's queries for long. */
  lockTimeout?: string;
  help: string;
}

const JOB_DEFAULTS: Record<JobName, JobDefaults> = {
  analyze: { schedule: '0 2 * * *', enabled: true, statementTimeout: '30m', help: 'ANALYZE the managed tables' },
  'vacuum-analyze': { schedule: '0 3 * * 0', enabled: true, statementTimeout: '2h', help: 'VACUUM (ANALYZE) the managed tables' },
  // REINDEX CONCURRENTLY only takes SHARE UPDATE EXCLUSIVE and then waits for older transactions to end;
  // neither blocks searches or writes, so it may wait longer than the other jobs before giving up.
  'reindex-vector': { schedule: '0 4 * * 0', enabled: true, statementTimeout: '0', lockTimeout: '1m', help: 'REINDEX CONCURRENTLY the vector index when needed' },
  'log-retention': { schedule: '30 1 * * *', enabled: true, statementTimeout: '1m', help: 'keep query_performance_log partitions ahead, archive and expire whole days' },
  backup: { schedule: '0 1 * * *', enabled: false, statementTimeout: '0', help: 'pg_dump --format=custom, verified' },
};

/** A PostgreSQL memory setting with its unit: 512MB, 2GB. */
const parseMemorySize = (value: unknown) => {
  const text = parseString(value).trim();
  if (!/^\d+(kB|MB|GB|TB)$/.test(text)) throw new Error(`"${text}" is not a memory size (expected e.g. 512MB, 2GB)`);
  return text;
};

/** Above 0 and at most the longest timer (MAX_TIMER_MS, about 24.8 days): intervals, timeouts, backoffs. */
const positiveDuration = (value: unknown) => {
  const ms = parseDuration(value);
  if (ms <= 0) throw new Error(`"${String(value)}" must be longer than 0`);
  return ms;
};

/** Ages compared in SQL (retention), never a timer: above 0, at most 100 years. */
const positiveAge = (value: unknown) => {
  const ms = parseDurationIn(value, 0, MAX_AGE_MS);
  if (ms <= 0) throw new Error(`"${String(value)}" must be longer than 0`);
  return ms;
};

/** Paths the server answers itself; the metrics path may not shadow them. */
const RESERVED_PATHS = ['/', '/healthz', '/readyz', '/probe'];
const telemetryPath = (value: unknown) => {
  const path = parseHttpPath(value);
  if (RESERVED_PATHS.includes(path) || path.startsWith('/jobs/')) throw new Error(`"${path}" is taken by the exporter's own routes (${RESERVED_PATHS.join(', ')}, /jobs/)`);
  return path;
};

function collectorFields() {
  return COLLECTOR_NAMES.flatMap((name) => {
    const d = COLLECTOR_DEFAULTS[name];
    return [
      field({ key: `collectors.${name}.enabled`, type: 'bool', parse: parseBoolean, default: d.enabled ?? true, flag: `collector.${name}`, help: `run the ${name} collector (${d.help}); --no-collector.${name} turns it off` }),
      field({ key: `collectors.${name}.interval`, type: 'duration', parse: positiveDuration, default: d.interval, help: `how often the ${name} collector polls` }),
      field({ key: `collectors.${name}.timeout`, type: 'duration', parse: positiveDuration, default: d.timeout, help: `statement_timeout and time budget of one ${name} poll` }),
    ];
  });
}

function jobFields() {
  return JOB_NAMES.flatMap((name) => {
    const d = JOB_DEFAULTS[name];
    return [
      field({ key: `jobs.${name}.enabled`, type: 'bool', parse: parseBoolean, default: d.enabled, help: `schedule the ${name} job (${d.help})` }),
      field({ key: `jobs.${name}.schedule`, type: 'cron', parse: parseCron, default: d.schedule, help: `cron expression of the ${name} job` }),
      field({ key: `jobs.${name}.timezone`, type: 'timezone', parse: parseTimezone, default: 'UTC', help: `time zone of the ${name} schedule` }),
      field({ key: `jobs.${name}.lock_timeout`, type: 'duration', parse: parseDuration, default: d.lockTimeout ?? '5s', help: `lock_timeout of the ${name} job's statements` }),
      field({ key: `jobs.${name}.statement_timeout`, type: 'duration', parse: parseDuration, default: d.statementTimeout, help: `statement_timeout of the ${name} job's statements (0 = none)` }),
    ];
  });
}

export const FIELDS = [
  field({ key: 'database_url', type: 'string', parse: parseString, default: undefined, env: 'DATABASE_URL', flag: 'database-url', help: 'PostgreSQL connection string, a postgresql:// URL or libpq key=value (precedence of the sources: README, Connection)' }),
  field({ key: 'log_level', type: 'enum', parse: parseEnum(LOG_LEVELS), default: 'info', env: 'LOG_LEVEL', flag: 'log.level', flagAliases: ['log-level'], help: `log level (${LOG_LEVELS.join(', ')}); --log-level is the older spelling` }),
  field({ key: 'log_format', type: 'enum', parse: parseEnum(LOG_FORMATS), default: 'json', env: 'LOG_FORMAT', flag: 'log.format', help: `log format (${LOG_FORMATS.join(', ')}): one JSON record or one logfmt line per event, on stderr` }),
  field({ key: 'instance_name', type: 'string', parse: parseString, default: undefined, env: 'INSTANCE_NAME', help: 'name of this sidecar in maintenance_log (default: the host name)' }),

  field({ key: 'web.listen_address', type: 'host:port', parse: parseListenAddress, default: ':9188', env: 'WEB_LISTEN_ADDRESS', flag: 'web.listen-address', help: 'address of /metrics, /healthz, /readyz (9187 is left to postgres_exporter)' }),
  field({ key: 'web.config_file', type: 'path', parse: parseString, default: undefined, env: 'WEB_CONFIG_FILE', flag: 'web.config.file', help: 'exporter-toolkit web config: TLS and basic auth' }),
  field({ key: 'web.probes_without_auth', type: 'bool', parse: parseBoolean, default: true, env: 'WEB_PROBES_WITHOUT_AUTH', help: 'with basic auth on, /healthz and /readyz still answer without credentials (Kubernetes probes send none)' }),
  field({ key: 'web.telemetry_path', type: 'path', parse: telemetryPath, default: '/metrics', env: 'WEB_TELEMETRY_PATH', flag: 'web.telemetry-path', help: 'path of the metrics endpoint' }),

  field({ key: 'database.pool_max', type: 'int', parse: (v) => parseInteger(v, 1, 20), default: 3, help: "connections in the exporter's own pool" }),
  field({ key: 'database.connect_timeout', type: 'duration', parse: positiveDuration, default: '5s', help: 'time allowed to open one connection' }),
  field({ key: 'database.reconnect_max_backoff', type: 'duration', parse: positiveDuration, default: '30s', help: 'longest wait between reconnection attempts' }),

  field({ key: 'auto_discover.enabled', type: 'bool', parse: parseBoolean, default: false, env: 'PG_EXPORTER_AUTO_DISCOVER_DATABASES', flag: 'auto-discover-databases', help: "watch every database of the server (postgres_exporter's flag): the database-scoped collectors run in each, their families labelled datname (README, Watching every database)" }),
  field({ key: 'auto_discover.exclude_databases', type: 'list', parse: parseStringList, default: [], env: 'PG_EXPORTER_EXCLUDE_DATABASES', flag: 'exclude-databases', help: 'databases not watched by auto-discovery: names, or patterns with * wildcards; comma-separated in a flag or variable' }),
  field({ key: 'auto_discover.include_databases', type: 'list', parse: parseStringList, default: [], env: 'PG_EXPORTER_INCLUDE_DATABASES', flag: 'include-databases', help: 'if set, only these databases are watched by auto-discovery (names or * patterns); exclude_databases still applies' }),
  field({ key: 'auto_discover.interval', type: 'duration', parse: positiveDuration, default: '1m', help: 'how often pg_database is read: a new database is watched, a dropped one forgotten, within this time' }),
  field({ key: 'auto_discover.max_connections', type: 'int', parse: (v) => parseInteger(v, 1, 1000), default: 5, help: "connections the watched databases' one-connection pools hold open at once, all together (the primary database's database.pool_max and pg_up's one come on top)" }),

  field({ key: 'auth_modules', type: 'map', parse: parseAuthModules, default: undefined, help: "postgres_exporter's auth modules for GET /probe?target=...&auth_module=NAME: NAME: { type: userpass, userpass: { username, password }, options: { sslmode: ..., other libpq keywords } } (README, Many servers from one exporter)" }),
  field({ key: 'probe.max_targets', type: 'int', parse: (v) => parseInteger(v, 1, 10_000), default: 100, env: 'PROBE_MAX_TARGETS', help: 'most /probe targets polled at once (each has its own pool and poller); a probe of one more is refused with 503 until an idle one is closed' }),
  field({ key: 'probe.idle_timeout', type: 'duration', parse: positiveDuration, default: '10m', env: 'PROBE_IDLE_TIMEOUT', help: 'a /probe target not probed for this long is closed: its pool ended, its poller stopped' }),
  field({ key: 'probe.connect_timeout', type: 'duration', parse: positiveDuration, default: '3s', help: "time allowed to open one connection to a /probe target (a dead target answers pg_up 0 within it); a target's own connect_timeout wins" }),
  field({ key: 'probe.scrape_timeout', type: 'duration', parse: positiveDuration, default: '10s', help: "how long a target's first probe waits for its first poll when the scraper sends no X-Prometheus-Scrape-Timeout-Seconds (Prometheus' default scrape_timeout)" }),
  field({ key: 'probe.pool_max', type: 'int', parse: (v) => parseInteger(v, 1, 20), default: 2, help: "connections in each /probe target's pool (plus one for pg_up)" }),

  field({ key: 'app.application_name', type: 'string', parse: parseString, default: 'rag-search', env: 'APP_APPLICATION_NAME', help: "application_name of the search service's connections" }),
  field({ key: 'app.pool_max', type: 'int', parse: (v) => parseInteger(v, 1, 100_000), default: 50, env: 'APP_POOL_MAX', help: "the search service's pool maximum (pool_size 20 + max_overflow 30)" }),

  field({ key: 'managed_tables', type: 'list', parse: parseStringList, default: DEFAULT_MANAGED_TABLES, help: 'tables whose statistics and indexes are watched and maintained' }),
  field({ key: 'expected_indexes', type: 'list', parse: parseStringList, default: DEFAULT_EXPECTED_INDEXES, help: 'indexes that must exist: pg_index_expected_present reads 0 when one is gone (the default applies only where the RAG schema is present)' }),
  field({ key: 'schema', type: 'string', parse: parseString, default: 'public', help: 'schema holding the RAG tables' }),

  ...collectorFields(),
  field({ key: 'custom_collectors.files', type: 'list of paths', parse: parseStringList, default: [], env: 'CUSTOM_COLLECTORS_FILES', flag: 'custom-collectors.files', help: 'collector files of our own format (docs/custom-collectors.md), re-read on reload' }),
  field({ key: 'custom_collectors.interval', type: 'duration', parse: positiveDuration, default: '1m', help: 'how often a custom collector polls unless its file says otherwise' }),
  field({ key: 'custom_collectors.timeout', type: 'duration', parse: positiveDuration, default: '10s', help: 'statement_timeout and time budget of one custom collector poll unless its file says otherwise' }),
  field({ key: 'custom_collectors.series_limit', type: 'int', parse: (v) => parseInteger(v, 1, 10_000_000), default: 10_000, help: 'most series one custom collector poll may publish; above it the poll fails and publishes nothing' }),
  field({ key: 'extend.query_path', type: 'path', parse: parseString, default: undefined, env: 'PG_EXPORTER_EXTEND_QUERY_PATH', flag: 'extend.query-path', help: "postgres_exporter's queries.yaml, read as postgres_exporter reads it; re-read on reload" }),
  field({ key: 'connections.top_applications', type: 'int', parse: (v) => parseInteger(v, 1, 100), default: 10, help: 'application_name values reported by name; the rest fold into "other"' }),
  field({ key: 'query_log.buckets', type: 'list of seconds', parse: parseBuckets, default: DEFAULT_QUERY_BUCKETS, help: 'histogram buckets of rag_query_duration_seconds' }),
  field({ key: 'query_log.query_types', type: 'list', parse: parseStringList, default: ['vector_search', 'hybrid_search', 'text_search', 'insert', 'update', 'delete'], help: 'query_type values kept as labels; others are counted as "other"' }),
  field({ key: 'query_log.lookback', type: 'duration', parse: (v) => parseDurationIn(v, 0, MAX_AGE_MS), default: '0s', help: 'on start, also read log rows this far back (0 = only rows written after start)' }),
  field({ key: 'query_log.batch_rows', type: 'int', parse: (v) => parseInteger(v, 1000, 10_000_000), default: 250_000, help: 'log rows read per statement (query_log and embedding_failures); a poll runs more statements while it is behind and within its time budget; halved after a statement timeout' }),
  field({ key: 'embeddings.dimensions', type: 'int', parse: (v) => parseInteger(v, 1, 64_000), default: 3072, help: 'expected vector dimension of chunk_embeddings.embedding' }),
  field({ key: 'embeddings.models', type: 'list', parse: parseStringList, default: ['text-embedding-3-large', 'text-embedding-3-small'], help: 'model_name values reported by name; others count as unknown ("other")' }),
  field({ key: 'embeddings.exact_interval', type: 'duration', parse: positiveDuration, default: '1h', help: 'how often the embeddings collector counts the whole corpus exactly; the polls in between count only the rows created since (docs/operations.md)' }),
  field({ key: 'embedding_failures.grace_period', type: 'duration', parse: positiveDuration, default: '30m', help: 'how long a new document may stay without an embedding before rag_embedding_generation_failures_total counts it' }),
  field({ key: 'recall.sample_size', type: 'int', parse: (v) => parseInteger(v, 1, 1000), default: 20, help: 'stored embeddings used as queries per recall measurement' }),
  field({ key: 'recall.top_k', type: 'int', parse: (v) => parseInteger(v, 1, 1000), default: 10, help: 'neighbours compared per query' }),
  field({ key: 'recall.ef_search', type: 'int', parse: (v) => parseInteger(v, 0, 1000), default: 0, help: 'hnsw.ef_search for the index pass (0 = the server default)' }),
  field({ key: 'recall.probes', type: 'int', parse: (v) => parseInteger(v, 0, 100000), default: 0, help: 'ivfflat.probes for the index pass of an IVFFlat index (0 = the server default)' }),
  field({ key: 'recall.indexes', type: 'list', parse: parseRecallIndexes, default: [], help: 'discovered pgvector indexes whose recall is measured, each on its own table and expression: patterns (schema.index, * wildcards), or maps {index: pattern, top_k, sample_size, ef_search, probes} overriding the recall.* values for the indexes they match (the first match wins); empty = the RAG search index' }),
  field({ key: 'statements.top_n', type: 'int', parse: (v) => parseInteger(v, 1, 500), default: 20, help: 'pgvector statements reported from pg_stat_statements' }),
  field({ key: 'statements.query_text', type: 'bool', parse: parseBoolean, default: false, help: 'publish the text of normalized statements in pgvector_statements_query_info (utility statements, whose literals pg_stat_statements keeps, never)' }),

  field({ key: 'jobs.enabled', type: 'bool', parse: parseBoolean, default: true, env: 'JOBS_ENABLED', help: 'run the maintenance scheduler in serve (--no-jobs turns it off)' }),
  field({ key: 'jobs.api_token', type: 'string', parse: parseString, default: undefined, env: 'JOBS_API_TOKEN', help: 'bearer token enabling POST /jobs/<name>/run and POST /-/reload (endpoints absent without it)' }),
  field({ key: 'jobs.window.start', type: 'HH:MM', parse: parseTimeOfDay, default: undefined, help: 'maintenance window start; scheduled runs outside it are skipped' }),
  field({ key: 'jobs.window.end', type: 'HH:MM', parse: parseTimeOfDay, default: undefined, help: 'maintenance window end' }),
  field({ key: 'jobs.window.timezone', type: 'timezone', parse: parseTimezone, default: 'UTC', help: 'time zone of the maintenance window' }),
  ...jobFields(),
  field({ key: 'jobs.reindex-vector.index', type: 'string', parse: parseString, default: 'idx_embeddings_vector', help: 'the vector index to rebuild' }),
  field({ key: 'jobs.reindex-vector.change_threshold', type: 'ratio', parse: (v) => parseNumber(v, 0, 10), default: 0.2, help: 'rebuild when rows inserted/updated/deleted since the last build exceed this share of the table' }),
  field({ key: 'jobs.reindex-vector.maintenance_work_mem', type: 'size', parse: parseMemorySize, default: undefined, help: "maintenance_work_mem of the rebuild's session, e.g. 2GB (an HNSW build is much faster when the graph fits); default: the server's" }),
  field({ key: 'jobs.reindex-vector.lists_growth_factor', type: 'number', parse: (v) => parseNumber(v, 1, 100), default: 2, help: 'IVFFlat: rebuild with new lists when rows/1000 (sqrt(rows) above 1M rows) exceeds this factor times the current lists' }),
  field({ key: 'jobs.log-retention.retention', type: 'duration', parse: positiveAge, default: '30d', help: 'query_performance_log rows older than this move to the archive' }),
  field({ key: 'jobs.log-retention.archive_retention', type: 'duration', parse: positiveAge, default: '365d', help: 'archived rows older than this are deleted' }),
  field({ key: 'jobs.log-retention.batch_size', type: 'int', parse: (v) => parseInteger(v, 1, 1_000_000), default: 5000, help: 'rows moved per transaction where rows move (converting an unpartitioned log, leftovers of the DEFAULT partitions); whole days move by partition' }),
  field({ key: 'jobs.log-retention.partitions_ahead', type: 'int', parse: (v) => parseInteger(v, 1, 90), default: 7, help: 'days of query log partitions kept ahead of today (UTC)' }),
  field({ key: 'jobs.log-retention.batch_pause', type: 'duration', parse: parseDuration, default: '50ms', help: 'pause between batches' }),
  field({ key: 'jobs.backup.directory', type: 'path', parse: parseString, default: '/var/lib/pgvector-exporter/backups', env: 'BACKUP_DIRECTORY', help: 'where dumps are written' }),
  field({ key: 'jobs.backup.retention', type: 'duration', parse: positiveAge, default: '30d', help: 'dumps older than this are deleted' }),
  field({ key: 'jobs.backup.pg_dump', type: 'path', parse: parseString, default: 'pg_dump', env: 'PG_DUMP_PATH', help: 'pg_dump binary (its major version must be >= the server)' }),
  field({ key: 'jobs.backup.pg_restore', type: 'path', parse: parseString, default: 'pg_restore', env: 'PG_RESTORE_PATH', help: 'pg_restore binary used to verify each dump' }),
];

/** One field as a nested object type: "a.b.c" of type T -> { a: { b: { c: T } } }, c optional when `Optional`. */
type Nest<K extends string, T, Optional extends boolean> = K extends `${infer Head}.${infer Rest}`
  ? { [P in Head]: Nest<Rest, T, Optional> }
  : Optional extends true
    ? { [P in K]?: T }
    : { [P in K]: T };

/** A field without a default (undefined) may be absent; every other field always has a value. */
type FieldObject<F> = F extends FieldSpec<infer K, infer T, infer D> ? Nest<K, T, undefined extends D ? true : false> : never;

type UnionToIntersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;

/** Flattens the intersections into one plain object type (readable in editors and error messages). */
type Simplify<T> = T extends readonly unknown[] ? T : T extends object ? { [K in keyof T]: Simplify<T[K]> } : T;

/** The nested, typed settings a list of fields describes: what loadConfig returns. */
export type ConfigOf<Fields extends readonly FieldSpec[]> = Simplify<UnionToIntersection<FieldObject<Fields[number]>>>;

/** The validated settings, derived from FIELDS. Durations are milliseconds. */
export type Config = ConfigOf<typeof FIELDS>;
