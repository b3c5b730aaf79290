import { readFileSync } from 'node:fs';
import { isMap, isScalar, LineCounter, parseDocument, type Node as YamlNode, type YAMLMap } from 'yaml';
import { ConfigError } from '../errors.js';
import { COLLECTOR_NAMES } from '../collectors/index.js';
import { JOB_NAMES } from '../jobs/index.js';
import { FIELDS, type Config, type ConfigOf, type FieldSpec } from './schema.js';
import { NestedValueError } from './values.js';

export interface ConfigSources {
  /** Flag values by flag name (without the leading dashes), as parsed by the CLI. */
  flags?: Record<string, string | boolean | undefined>;
  env?: Record<string, string | undefined>;
  /** Path of the YAML config file (--config / CONFIG_FILE). */
  file?: string;
}

const FIELD_BY_KEY = new Map<string, FieldSpec>(FIELDS.map((f) => [f.key, f]));

/** Validates every source once and returns a typed Config; any problem is a ConfigError (exit 2). */
export function loadConfig(sources: ConfigSources = {}): Config {
  const env = sources.env ?? {};
  const fileValues = sources.file ? readConfigFile(sources.file) : new Map<string, unknown>();
  const values = new Map<string, unknown>();
  for (const field of FIELDS) {
    const value = pickValue(field, sources.flags ?? {}, env, fileValues);
    if (value !== undefined) values.set(field.key, value);
  }
  return buildNested(FIELDS, values);
}

function pickValue(
  field: FieldSpec,
  flags: Record<string, string | boolean | undefined>,
  env: Record<string, string | undefined>,
  fileValues: Map<string, unknown>,
): unknown {
  const flagName = [field.flag, ...(field.flagAliases ?? [])].find((name) => name !== undefined && flags[name] !== undefined);
  if (flagName) return parseOrThrow(field, flags[flagName], `flag --${flagName}`);
  const envValue = field.env ? env[field.env] : undefined;
  if (envValue !== undefined && envValue !== '') return parseOrThrow(field, envValue, `environment variable ${field.env}`);
  if (fileValues.has(field.key)) return fileValues.get(field.key);
  return field.default === undefined ? undefined : parseOrThrow(field, field.default, 'default');
}

function parseOrThrow(field: FieldSpec, raw: unknown, where: string): unknown {
  try {
    return field.parse(raw);
  } catch (err) {
    throw new ConfigError(`${where}: ${field.key}: ${(err as Error).message}`);
  }
}

/** Reads the YAML file, rejecting unknown keys and bad values with file:line:key. */
export function readConfigFile(path: string): Map<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${path}: cannot read config file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    const line = first.linePos?.[0]?.line ?? lineCounter.linePos(first.pos[0]).line;
    throw new ConfigError(`${path}:${line}: invalid YAML: ${first.message.split('\n')[0]}`);
  }
  const values = new Map<string, unknown>();
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) return values;
  if (!isMap(doc.contents)) throw new ConfigError(`${path}:1: the config file must be a mapping of keys to values`);
  const lineOf = (node: YamlNode | null | undefined) => (node?.range ? lineCounter.linePos(node.range[0]).line : 1);
  walkMap(doc.contents, '', path, lineOf, values);
  return values;
}

function walkMap(
  map: YAMLMap,
  prefix: string,
  path: string,
  lineOf: (node: YamlNode | null | undefined) => number,
  values: Map<string, unknown>,
): void {
  for (const pair of map.items) {
    const keyNode = pair.key as YamlNode;
    const name = isScalar(keyNode) ? String(keyNode.value) : String(keyNode);
    const key = prefix ? `${prefix}.${name}` : name;
    const line = lineOf(keyNode);
    const field = FIELD_BY_KEY.get(key);
    const valueNode = pair.value as YamlNode | null;
    if (field) {
      const raw = valueNode && 'toJSON' in valueNode ? valueNode.toJSON() : valueNode;
      if (raw === null || raw === undefined) continue; // "key:" with nothing = keep the default
      try {
        values.set(key, field.parse(raw));
      } catch (err) {
        if (err instanceof NestedValueError) {
          // Inside a structured setting: the line and key of the very key that is wrong.
          const inner = nestedNode(valueNode, err.path);
          throw new ConfigError(`${path}:${lineOf(inner) || line}: ${[key, ...err.path].join('.')}: ${err.message}`);
        }
        throw new ConfigError(`${path}:${lineOf(valueNode) || line}: ${key}: ${(err as Error).message}`);
      }
    } else if (FIELDS.some((f) => f.key.startsWith(`${key}.`))) {
      if (valueNode === null || (isScalar(valueNode) && valueNode.value === null)) continue;
      if (!isMap(valueNode)) throw new ConfigError(`${path}:${line}: ${key}: expected a mapping of keys`);
      walkMap(valueNode, key, path, lineOf, values);
    } else {
      throw new ConfigError(`${path}:${line}: ${unknownKeyMessage(prefix, name, key)}`);
    }
  }
}

/** The key node at `path` under `node` (its deepest existing ancestor when the key is missing). */
function nestedNode(node: YamlNode | null, path: readonly string[]): YamlNode | null {
  let current = node;
  for (const name of path) {
    if (!isMap(current)) break;
    const pair = current.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === name);
    if (!pair) break;
    current = pair.key as YamlNode;
    const value = pair.value as YamlNode | null;
    if (name !== path.at(-1) && value) current = value;
  }
  return current;
}

function unknownKeyMessage(prefix: string, name: string, key: string): string {
  if (prefix === 'jobs') return `unknown job "${name}" (known jobs: ${JOB_NAMES.join(', ')})`;
  if (prefix === 'collectors') return `unknown collector "${name}" (known collectors: ${COLLECTOR_NAMES.join(', ')})`;
  const siblings = [...new Set(FIELDS.filter((f) => f.key.startsWith(prefix ? `${prefix}.` : '')).map((f) => f.key.slice(prefix ? prefix.length + 1 : 0).split('.')[0]))];
  return `unknown key "${key}" (known here: ${siblings.join(', ')})`;
}

/**
 * The dotted keys' values as the nested object ConfigOf<typeof fields> describes. Every field has a
 * value here (parsed from a source or from its default) except those whose default is undefined,
 * which are exactly the optional ones of ConfigOf: so the one assertion below states what the loop
 * builds, for the fields given, and the compiler checks every use of the result.
 */
function buildNested<const Fields extends readonly FieldSpec[]>(fields: Fields, values: Map<string, unknown>): ConfigOf<Fields> {
  const root: Record<string, unknown> = {};
  for (const { key } of fields) {
    const parts = key.split('.');
    let node = root;
    // Sections exist even when every key in them is unset (jobs.window, extend), as ConfigOf says.
    for (const part of parts.slice(0, -1)) {
      node[part] ??= {};
      node = node[part] as Record<string, unknown>;
    }
    if (values.has(key)) node[parts.at(-1)!] = values.get(key);
  }
  return root as ConfigOf<Fields>;
}
