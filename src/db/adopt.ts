import { readFileSync } from 'node:fs';
import type pg from 'pg';
import { FatalError } from '../errors.js';
import { assertPgvectorAvailable, ensureMigrationsTable, loadMigrations, MIGRATE_LOCK_KEY, SQL_DIR, type Migration } from './migrate.js';
import { splitSqlScript } from './sql-script.js';

/**
 * `migrate --adopt`: takes over a database built by hand (from the specification, or an earlier copy of
 * the migrations) instead of failing on its first existing object.
 *
 * How it decides: the migrations, and the specification's own table DDL (sql/adopt/), are built in two
 * scratch schemas inside a savepoint that is rolled back; each object a pending migration would create is
 * then compared with the database's object of that name:
 * - a table matches when it has every column of the migrations' table (or of the specification's) with
 *   the same type; extra columns, nullability and constraints may differ (listed, never altered);
 * - an index matches when its definition is the migrations' (under any name); an invalid one is rebuilt;
 * - a function with the same arguments and result is replaced by the migrations' version (this is how the
 *   specification's system_health_check() becomes the extended one); a view with the same columns too;
 * - anything else of the same name is a conflict: listed, and nothing at all is changed.
 * Missing objects are created from the migration's own statement; idempotent statements (DO blocks,
 * GRANTs, CREATE EXTENSION IF NOT EXISTS) run again, GRANTs naming only objects that exist afterwards.
 * Everything happens in one transaction, and the pending migrations are recorded in schema_migrations
 * with their checksums, so a later plain `migrate` applies only newer files. Data is never touched:
 * existing tables are not altered, nothing is inserted into or deleted from them.
 */

export const SPECIFICATION_TABLES_FILE = `${SQL_DIR}adopt/specification-tables.sql`;

/**
 * The last migration whose objects a database built by hand can already have: adoption plans up to it.
 * Later migrations change what exists (007 converts the query log to partitions) and are applied by
 * a plain `migrate` afterwards, unless their result is already in effect (ALREADY_IN_EFFECT).
 */
export const ADOPT_THROUGH = '006';

/** A later migration whose result the database already shows (built by the migrations, bookkeeping lost). */
const ALREADY_IN_EFFECT: Record<string, string> = {
  '007': "SELECT coalesce((SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass('query_performance_log')), false) AS in_effect",
  '008': "SELECT coalesce((SELECT prosrc LIKE '%rag.health_exact_count_max_rows%' FROM pg_proc WHERE oid = to_regprocedure('system_health_check()')), false) AS in_effect",
  // 010's body replaces 009's per-row probes of the sample: a function with it is past 009 too.
  '009': "SELECT coalesce((SELECT prosrc LIKE '%LIMIT 1) IS NULL)%' OR prosrc LIKE '%random() * v_run < 1%' FROM pg_proc WHERE oid = to_regprocedure('system_health_check()')), false) AS in_effect",
  '010': "SELECT coalesce((SELECT prosrc LIKE '%random() * v_run < 1%' FROM pg_proc WHERE oid = to_regprocedure('system_health_check()')), false) AS in_effect",
};

/**
 * The bodies later migrations give functions (008 replaces system_health_check()): a database whose
 * function already has one of them is newer than the adopted migration, not different from it, and
 * keeps it. A body is what pg_proc.prosrc holds: the text between the dollar quotes.
 */
function laterFunctionBodies(): Map<string, Set<string>> {
  const bodies = new Map<string, Set<string>>();
  for (const migration of loadMigrations().filter((m) => m.version > ADOPT_THROUGH)) {
    for (const { text } of splitSqlScript(migration.sql)) {
      const what = classifyStatement(text);
      const quoted = /\bAS\s+(\$\w*\$)([\s\S]*?)\1/i.exec(text);
      if (what.kind !== 'function' || !quoted) continue;
      const set = bodies.get(what.name) ?? new Set<string>();
      set.add(quoted[2]!);
      bodies.set(what.name, set);
    }
  }
  return bodies;
}

export type AdoptAction = 'keep' | 'create' | 'replace' | 'rebuild' | 'run' | 'skip';

export interface AdoptStep {
  migration: string;
  action: AdoptAction;
  /** e.g. `table framework_documents`, `GRANT (line 38)`. */
  object: string;
  note?: string;
  /** The statement(s) run for this step (none for keep and skip). */
  statements: string[];
}

export interface AdoptResult {
  /** Migrations already in schema_migrations: not looked at. */
  alreadyApplied: string[];
  /** Migrations recorded as applied by this run (or that would be, in a dry run). */
  adopted: string[];
  steps: AdoptStep[];
  /** Objects that exist in a shape the migrations cannot adopt; when any, nothing was changed. */
  conflicts: string[];
  /** False in a dry run and when there were conflicts. */
  changed: boolean;
}

/**
 * Where the specification's shape of a table leaves the migrations' code for it unusable: the objects
 * written for the migrations' columns are not added beside it (the audit triggers would fail every
 * insert into framework_documents on the specification's security_audit_log).
 */
const SPECIFICATION_VARIANTS: Record<string, { replaces: readonly string[]; reason: string }> = {
  security_audit_log: {
    replaces: ['audit_row_change', 'trg_audit_framework_documents', 'trg_audit_chunk_embeddings'],
    reason: "the specification's audit trail is kept (its own trigger function writes its columns)",
  },
};

interface ColumnInfo {
  type: string;
  notNull: boolean;
}

interface SchemaDescription {
  /** Tables, views and sequences by name: relkind and columns in order. */
  relations: Map<string, { kind: string; columns: Map<string, ColumnInfo>; viewDefinition?: string }>;
  /** Indexes by name. */
  indexes: Map<string, { table: string; definition: string; valid: boolean }>;
  functions: Map<string, { args: string; result: string; source: string }[]>;
  /** trigger name -> table */
  triggers: Map<string, string>;
  /** table -> constraint definitions */
  constraints: Map<string, { name: string; definition: string }[]>;
  /** sequence -> owning table */
  ownedSequences: Map<string, string>;
}

const DESCRIBE_RELATIONS = `
SELECT c.relname, c.relkind::text AS kind, CASE WHEN c.relkind = 'v' THEN pg_get_viewdef(c.oid) END AS view_definition, a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null
  FROM pg_class c
  LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm')
 WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
 ORDER BY c.relname, a.attnum`;

const DESCRIBE_INDEXES = `
SELECT i.relname, t.relname AS table_name, pg_get_indexdef(i.oid) AS definition, x.indisvalid AND x.indisready AS valid
  FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
 WHERE i.relnamespace = $1::regnamespace`;

const DESCRIBE_FUNCTIONS = `
SELECT p.proname, pg_get_function_identity_arguments(p.oid) AS args, pg_get_function_result(p.oid) AS result, p.prosrc AS source
  FROM pg_proc p WHERE p.pronamespace = $1::regnamespace`;

const DESCRIBE_TRIGGERS = `
SELECT g.tgname, c.relname FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
 WHERE c.relnamespace = $1::regnamespace AND NOT g.tgisinternal`;

const DESCRIBE_CONSTRAINTS = `
SELECT c.relname, k.conname, pg_get_constraintdef(k.oid) AS definition
  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
 WHERE c.relnamespace = $1::regnamespace`;

const DESCRIBE_OWNED_SEQUENCES = `
SELECT s.relname AS sequence, t.relname AS table_name
  FROM pg_class s
  JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
  JOIN pg_class t ON t.oid = d.refobjid
 WHERE s.relkind = 'S' AND s.relnamespace = $1::regnamespace`;

async function describe(client: pg.Client, schema: string, schemasToStrip: readonly string[]): Promise<SchemaDescription> {
  const strip = (text: string) => schemasToStrip.reduce((t, s) => t.split(`${quoteIfNeeded(s)}.`).join(''), text);
  const relations: SchemaDescription['relations'] = new Map();
  for (const row of (await client.query(DESCRIBE_RELATIONS, [schema])).rows) {
    let rel = relations.get(row.relname);
    if (!rel) relations.set(row.relname, (rel = { kind: row.kind, columns: new Map(), viewDefinition: row.view_definition ? strip(row.view_definition) : undefined }));
    if (row.attname) rel.columns.set(row.attname, { type: strip(row.type), notNull: row.not_null });
  }
  const indexes: SchemaDescription['indexes'] = new Map();
  for (const row of (await client.query(DESCRIBE_INDEXES, [schema])).rows) {
    indexes.set(row.relname, { table: row.table_name, definition: normaliseIndexDefinition(strip(row.definition)), valid: row.valid });
  }
  const functions: SchemaDescription['functions'] = new Map();
  for (const row of (await client.query(DESCRIBE_FUNCTIONS, [schema])).rows) {
    const list = functions.get(row.proname) ?? [];
    list.push({ args: strip(row.args), result: strip(row.result), source: row.source });
    functions.set(row.proname, list);
  }
  const triggers = new Map<string, string>();
  for (const row of (await client.query(DESCRIBE_TRIGGERS, [schema])).rows) triggers.set(row.tgname, row.relname);
  const constraints: SchemaDescription['constraints'] = new Map();
  for (const row of (await client.query(DESCRIBE_CONSTRAINTS, [schema])).rows) {
    const list = constraints.get(row.relname) ?? [];
    list.push({ name: row.conname, definition: strip(row.definition) });
    constraints.set(row.relname, list);
  }
  const ownedSequences = new Map<string, string>();
  for (const row of (await client.query(DESCRIBE_OWNED_SEQUENCES, [schema])).rows) ownedSequences.set(row.sequence, row.table_name);
  return { relations, indexes, functions, triggers, constraints, ownedSequences };
}

function quoteIfNeeded(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

/** `CREATE [UNIQUE] INDEX name ON [ONLY] table USING ...` -> `[UNIQUE] USING ...`: comparable under any name. */
export function normaliseIndexDefinition(definition: string): string {
  const m = /^CREATE\s+(UNIQUE\s+)?INDEX\s+\S+\s+ON\s+(?:ONLY\s+)?\S+\s+(.*)$/is.exec(definition);
  return m ? `${m[1] ? 'UNIQUE ' : ''}${m[2]!.trim()}` : definition;
}

/** What a migration statement creates, from its first words. */
type StatementKind =
  | { kind: 'table'; name: string }
  | { kind: 'index'; name: string; table: string }
  | { kind: 'function'; name: string }
  | { kind: 'view'; name: string }
  | { kind: 'trigger'; name: string; table: string }
  | { kind: 'grant'; privileges: string; objectType: string; objects: string[]; grantees: string }
  | { kind: 'other' };

export function classifyStatement(text: string): StatementKind {
  const sql = stripLeadingComments(text);
  let m = /^CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)/i.exec(sql);
  if (m) return { kind: 'table', name: m[1]! };
  m = /^CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)\s+ON\s+(?:ONLY\s+)?(\w+)/i.exec(sql);
  if (m) return { kind: 'index', name: m[1]!, table: m[2]! };
  m = /^CREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+(\w+)/i.exec(sql);
  if (m) return { kind: 'function', name: m[1]! };
  m = /^CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+(\w+)/i.exec(sql);
  if (m) return { kind: 'view', name: m[1]! };
  m = /^CREATE\s+TRIGGER\s+(\w+)\s[\s\S]*?\bON\s+(\w+)/i.exec(sql);
  if (m) return { kind: 'trigger', name: m[1]!, table: m[2]! };
  m = /^GRANT\s+([\s\S]+?)\s+ON\s+(?:(SEQUENCE|FUNCTION|TABLE)\s+)?([\s\S]+?)\s+TO\s+([\s\S]+)$/i.exec(sql);
  if (m) {
    const objects = m[3]!.split(',').map((o) => o.trim()).filter(Boolean);
    return { kind: 'grant', privileges: m[1]!, objectType: (m[2] ?? '').toUpperCase(), objects, grantees: m[4]!.trim() };
  }
  return { kind: 'other' };
}

function stripLeadingComments(text: string): string {
  let sql = text.trimStart();
  for (;;) {
    if (sql.startsWith('--')) sql = sql.slice(sql.indexOf('\n') === -1 ? sql.length : sql.indexOf('\n') + 1).trimStart();
    else if (sql.startsWith('/*')) sql = sql.slice(sql.indexOf('*/') + 2).trimStart();
    else return sql;
  }
}

function mentions(sql: string, name: string): boolean {
  return new RegExp(`\\b${name}\\b`, 'i').test(sql);
}

function firstLine(sql: string): string {
  const line = stripLeadingComments(sql).split('\n')[0]!.trim();
  return line.length > 60 ? `${line.slice(0, 57)}...` : line;
}

interface Planner {
  target: SchemaDescription;
  migrations: SchemaDescription;
  specification: SchemaDescription;
}

type TableVerdict = { state: 'missing' } | { state: 'matches'; note?: string } | { state: 'specification'; note: string } | { state: 'conflict'; reason: string };

/** Every column of `reference` present in `actual` with the same type. */
function columnDifferences(actual: Map<string, ColumnInfo>, reference: Map<string, ColumnInfo>): string[] {
  const differences: string[] = [];
  for (const [name, column] of reference) {
    const found = actual.get(name);
    if (!found) differences.push(`column ${name} (${column.type}) is missing`);
    else if (found.type !== column.type) differences.push(`column ${name} is ${found.type}, expected ${column.type}`);
  }
  return differences;
}

function judgeTable(p: Planner, name: string): TableVerdict {
  const actual = p.target.relations.get(name);
  if (!actual) return { state: 'missing' };
  if (actual.kind !== 'r' && actual.kind !== 'p') return { state: 'conflict', reason: `table ${name}: a ${relationKind(actual.kind)} of that name exists` };
  const reference = p.migrations.relations.get(name)!;
  const differences = columnDifferences(actual.columns, reference.columns);
  if (differences.length === 0) {
    const notes = tableNotes(p, name, actual.columns, reference.columns);
    return { state: 'matches', note: notes.length > 0 ? `kept as built: ${notes.join('; ')}` : undefined };
  }
  const specification = p.specification.relations.get(name);
  if (specification && columnDifferences(actual.columns, specification.columns).length === 0) {
    return { state: 'specification', note: `the specification's shape, kept as built (${differences.join('; ')} in the migrations' shape)` };
  }
  return { state: 'conflict', reason: `table ${name}: ${differences.join('; ')}` };
}

function tableNotes(p: Planner, name: string, actual: Map<string, ColumnInfo>, reference: Map<string, ColumnInfo>): string[] {
  const notes: string[] = [];
  const nullable = [...reference].filter(([c, info]) => info.notNull && !actual.get(c)!.notNull).map(([c]) => c);
  if (nullable.length > 0) notes.push(`nullable where the migrations say NOT NULL: ${nullable.join(', ')}`);
  const extra = [...actual.keys()].filter((c) => !reference.has(c));
  if (extra.length > 0) notes.push(`extra columns: ${extra.join(', ')}`);
  const have = new Set((p.target.constraints.get(name) ?? []).map((c) => c.definition));
  const absent = (p.migrations.constraints.get(name) ?? []).filter((c) => !have.has(c.definition)).map((c) => c.name);
  if (absent.length > 0) notes.push(`constraints of the migrations not present (not added): ${absent.join(', ')}`);
  return notes;
}

function relationKind(kind: string): string {
  return { v: 'view', m: 'materialized view', S: 'sequence', f: 'foreign table', r: 'table', p: 'partitioned table' }[kind] ?? 'relation';
}

/**
 * Plans (and, unless dryRun, applies) the adoption of every migration not yet recorded. Runs in one
 * transaction under the migrate lock; on a conflict or in a dry run it rolls back, changing nothing.
 */
export async function adopt(
  client: pg.Client,
  options: { dryRun: boolean },
  migrations = loadMigrations().filter((m) => m.version <= ADOPT_THROUGH),
): Promise<AdoptResult> {
  await assertPgvectorAvailable(client);
  await client.query('SELECT pg_advisory_lock(hashtext($1))', [MIGRATE_LOCK_KEY]);
  try {
    await client.query('BEGIN');
    try {
      const result = await planAndApply(client, options, migrations);
      await client.query(result.changed ? 'COMMIT' : 'ROLLBACK');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock(hashtext($1))', [MIGRATE_LOCK_KEY]).catch(() => undefined);
  }
}

async function planAndApply(client: pg.Client, options: { dryRun: boolean }, migrations: Migration[]): Promise<AdoptResult> {
  const { rows: tracked } = await client.query<{ exists: boolean }>("SELECT to_regclass('schema_migrations') IS NOT NULL AS exists");
  const applied = new Set<string>();
  if (tracked[0]!.exists) {
    for (const row of (await client.query<{ version: string }>('SELECT version FROM schema_migrations')).rows) applied.add(row.version);
  }
  const pending = migrations.filter((m) => !applied.has(m.version));
  const result: AdoptResult = {
    alreadyApplied: migrations.filter((m) => applied.has(m.version)).map((m) => m.file),
    adopted: pending.map((m) => m.file),
    steps: [],
    conflicts: [],
    changed: false,
  };
  if (pending.length === 0) return result;

  const planner = await buildReferences(client, migrations);
  const parsed = pending.map((migration) => ({
    migration,
    statements: splitSqlScript(migration.sql).map((s) => ({ ...s, what: classifyStatement(s.text) })),
  }));

  // Tables first: their verdicts decide which of the migrations' code is skipped.
  const tableVerdicts = new Map<string, TableVerdict>();
  const skipped = new Map<string, string>();
  for (const { statements } of parsed) {
    for (const { what } of statements) {
      if (what.kind !== 'table') continue;
      const verdict = judgeTable(planner, what.name);
      tableVerdicts.set(what.name, verdict);
      const variant = SPECIFICATION_VARIANTS[what.name];
      if (verdict.state === 'specification' && variant) for (const name of variant.replaces) skipped.set(name, variant.reason);
    }
  }

  const created = new Set<string>();
  for (const { migration, statements } of parsed) {
    for (const statement of statements) {
      const step = planStep(planner, migration.file, statement.text, statement.line, statement.what, tableVerdicts, skipped, created);
      if ('conflict' in step) result.conflicts.push(step.conflict);
      else result.steps.push(step);
    }
  }
  if (result.conflicts.length > 0 || options.dryRun) return result;

  for (const step of result.steps) {
    for (const sql of step.statements) {
      try {
        await client.query(sql);
      } catch (err) {
        throw new FatalError(`migrate --adopt: ${step.migration}: ${step.action} ${step.object} failed, nothing was changed: ${(err as Error).message}`);
      }
    }
  }
  await ensureMigrationsTable(client);
  for (const migration of pending) {
    await client.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
      migration.version,
      migration.name,
      migration.checksum,
    ]);
  }
  // In order, stopping at the first that is not in effect or has no check: a later one is never recorded
  // without the ones before it (a migration without an ALREADY_IN_EFFECT entry is left to `migrate`).
  for (const later of loadMigrations().filter((m) => m.version > ADOPT_THROUGH && !applied.has(m.version))) {
    const check = ALREADY_IN_EFFECT[later.version];
    if (!check) break;
    const { rows } = await client.query<{ in_effect: boolean }>(check);
    if (!rows[0]!.in_effect) break;
    await client.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [later.version, later.name, later.checksum]);
    result.adopted.push(later.file);
  }
  result.changed = true;
  return result;
}

/**
 * Builds the migrations and the specification's tables in scratch schemas, describes them and the
 * database's own schema, and rolls the scratch schemas back.
 */
async function buildReferences(client: pg.Client, migrations: Migration[]): Promise<Planner> {
  const { rows } = await client.query<{ schema: string | null; path: string }>(
    "SELECT current_schema() AS schema, current_setting('search_path') AS path",
  );
  const schema = rows[0]!.schema;
  if (!schema) throw new FatalError('migrate --adopt: no current schema (search_path names no existing schema)');
  const suffix = `${process.pid}_${Date.now()}`;
  const refMigrations = `pgvector_exporter_adopt_m_${suffix}`;
  const refSpecification = `pgvector_exporter_adopt_s_${suffix}`;
  const strip = [schema, refMigrations, refSpecification];
  await client.query('SAVEPOINT adopt_references');
  try {
    await buildSchema(client, refMigrations, rows[0]!.path, migrations.flatMap((m) => splitSqlScript(m.sql).map((s) => ({ file: m.file, ...s }))));
    const specification = readFileSync(SPECIFICATION_TABLES_FILE, 'utf8');
    await buildSchema(client, refSpecification, rows[0]!.path, splitSqlScript(specification).map((s) => ({ file: 'specification-tables.sql', ...s })));
    await client.query(`SET LOCAL search_path = ${rows[0]!.path}`);
    return {
      target: await describe(client, schema, strip),
      migrations: await describe(client, refMigrations, strip),
      specification: await describe(client, refSpecification, strip),
    };
  } finally {
    await client.query('ROLLBACK TO SAVEPOINT adopt_references');
  }
}

async function buildSchema(client: pg.Client, name: string, path: string, statements: { file: string; text: string; line: number }[]): Promise<void> {
  await client.query(`CREATE SCHEMA ${name}`);
  // The original path stays behind it, so the vector extension's types resolve wherever it lives.
  await client.query(`SET LOCAL search_path = ${name}, ${path}`);
  for (const s of statements) {
    try {
      await client.query(s.text);
    } catch (err) {
      throw new FatalError(`migrate --adopt: building the reference schema failed at ${s.file}:${s.line}: ${(err as Error).message}`);
    }
  }
}

function planStep(
  p: Planner,
  migration: string,
  sql: string,
  line: number,
  what: StatementKind,
  tables: Map<string, TableVerdict>,
  skipped: Map<string, string>,
  created: Set<string>,
): AdoptStep | { conflict: string } {
  const step = (action: AdoptAction, object: string, note?: string, statements: string[] = []): AdoptStep => ({
    migration,
    action,
    object,
    note,
    statements,
  });
  switch (what.kind) {
    case 'table': {
      const verdict = tables.get(what.name)!;
      if (verdict.state === 'conflict') return { conflict: `${migration}: ${verdict.reason}` };
      if (verdict.state === 'missing') {
        created.add(what.name);
        for (const [sequence, table] of p.migrations.ownedSequences) if (table === what.name) created.add(sequence);
        return step('create', `table ${what.name}`, undefined, [sql]);
      }
      return step('keep', `table ${what.name}`, verdict.note);
    }
    case 'index': {
      const reference = p.migrations.indexes.get(what.name)!;
      const actual = p.target.indexes.get(what.name);
      if (actual) {
        if (actual.table !== what.table || actual.definition !== reference.definition) {
          return { conflict: `${migration}: index ${what.name} exists as "${actual.definition}" on ${actual.table}, the migrations build "${reference.definition}" on ${what.table}` };
        }
        if (!actual.valid) return step('rebuild', `index ${what.name}`, 'invalid: dropped and built again', [`DROP INDEX ${what.name}`, sql]);
        return step('keep', `index ${what.name}`);
      }
      const table = p.target.relations.get(what.table);
      const absent = table ? [...p.migrations.relations.get(what.table)!.columns.keys()].filter((c) => !table.columns.has(c) && mentions(reference.definition, c)) : [];
      if (absent.length > 0) return step('skip', `index ${what.name}`, `${what.table} has no column ${absent.join(', ')} (kept as built)`);
      const equivalent = [...p.target.indexes].find(([, i]) => i.table === what.table && i.definition === reference.definition && i.valid);
      if (equivalent) return step('keep', `index ${what.name}`, `present as ${equivalent[0]}`);
      created.add(what.name);
      return step('create', `index ${what.name}`, `${reference.definition} on ${what.table}`, [sql]);
    }
    case 'function': {
      if (skipped.has(what.name)) return step('skip', `function ${what.name}`, skipped.get(what.name));
      const reference = p.migrations.functions.get(what.name)![0]!;
      const actual = (p.target.functions.get(what.name) ?? []).find((f) => f.args === reference.args);
      if (!actual) {
        created.add(what.name);
        return step('create', `function ${what.name}(${reference.args})`, undefined, [sql]);
      }
      if (actual.source === reference.source) return step('keep', `function ${what.name}(${reference.args})`);
      if (actual.result === reference.result && laterFunctionBodies().get(what.name)?.has(actual.source)) {
        return step('keep', `function ${what.name}(${reference.args})`, "a later migration's version");
      }
      if (actual.result !== reference.result) {
        return { conflict: `${migration}: function ${what.name}(${reference.args}) returns ${actual.result}, the migrations' returns ${reference.result}` };
      }
      return step('replace', `function ${what.name}(${reference.args})`, 'same arguments and result, body replaced by the migrations\' version', [orReplace(sql)]);
    }
    case 'view': {
      const reference = p.migrations.relations.get(what.name)!;
      const actual = p.target.relations.get(what.name);
      if (!actual) {
        created.add(what.name);
        return step('create', `view ${what.name}`, undefined, [sql]);
      }
      const sameColumns =
        actual.kind === 'v' &&
        [...actual.columns].map(([c, i]) => `${c} ${i.type}`).join(', ') === [...reference.columns].map(([c, i]) => `${c} ${i.type}`).join(', ');
      if (!sameColumns) {
        const columns = [...actual.columns.keys()].join(', ');
        return { conflict: `${migration}: ${relationKind(actual.kind)} ${what.name} (${columns}) differs from the migrations' view (${[...reference.columns.keys()].join(', ')})` };
      }
      if (actual.viewDefinition === reference.viewDefinition) return step('keep', `view ${what.name}`);
      return step('replace', `view ${what.name}`, 'same columns, definition replaced by the migrations\' version', [orReplace(sql)]);
    }
    case 'trigger': {
      if (skipped.has(what.name)) return step('skip', `trigger ${what.name}`, skipped.get(what.name));
      const table = p.target.triggers.get(what.name);
      if (table === what.table) return step('keep', `trigger ${what.name} on ${what.table}`);
      if (table !== undefined) return { conflict: `${migration}: trigger ${what.name} exists on ${table}, the migrations put it on ${what.table}` };
      return step('create', `trigger ${what.name} on ${what.table}`, undefined, [sql]);
    }
    case 'grant': {
      const exists = (name: string) => {
        const bare = name.replace(/\(.*\)$/, '');
        return what.objectType === 'FUNCTION'
          ? p.target.functions.has(bare) || created.has(bare)
          : p.target.relations.has(bare) || created.has(bare);
      };
      const kept = what.objects.filter(exists);
      const dropped = what.objects.filter((o) => !exists(o));
      const object = `GRANT ${what.privileges} (line ${line})`;
      if (kept.length === 0) return step('skip', object, `none of ${dropped.join(', ')} exists`);
      const type = what.objectType ? `${what.objectType} ` : '';
      return step(
        'run',
        object,
        dropped.length > 0 ? `not granted on ${dropped.join(', ')} (absent in this database)` : undefined,
        [`GRANT ${what.privileges} ON ${type}${kept.join(', ')} TO ${what.grantees}`],
      );
    }
    case 'other': {
      const reason = [...skipped].find(([name]) => mentions(sql, name));
      if (reason) return step('skip', `${firstLine(sql)} (line ${line})`, reason[1]);
      return step('run', `${firstLine(sql)} (line ${line})`, undefined, [sql]);
    }
  }
}

function orReplace(sql: string): string {
  return stripLeadingComments(sql).replace(/^CREATE\s+(?:OR\s+REPLACE\s+)?/i, 'CREATE OR REPLACE ');
}
