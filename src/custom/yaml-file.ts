import { readFileSync } from 'node:fs';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode, type YAMLMap, type YAMLSeq } from 'yaml';
import { ConfigError } from '../errors.js';

/**
 * A YAML file read with line numbers, for the two collector file formats: every problem is a ConfigError
 * (exit 2 at start, a rejected reload later) naming file:line and the key, never a stack trace.
 */
export class YamlFile {
  private readonly lineCounter = new LineCounter();
  readonly root: YamlNode | null;

  constructor(
    readonly path: string,
    text: string,
  ) {
    const doc = parseDocument(text, { lineCounter: this.lineCounter, prettyErrors: false, uniqueKeys: true });
    if (doc.errors.length > 0) {
      const first = doc.errors[0]!;
      const line = first.linePos?.[0]?.line ?? this.lineCounter.linePos(first.pos[0]).line;
      throw new ConfigError(`${path}:${line}: invalid YAML: ${first.message.split('\n')[0]}`);
    }
    this.root = (doc.contents as YamlNode | null) ?? null;
  }

  static read(path: string): YamlFile {
    return new YamlFile(path, YamlFile.text(path));
  }

  static text(path: string): string {
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError(`${path}: cannot read file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }

  line(node: YamlNode | null | undefined, fallback = 1): number {
    return node?.range ? this.lineCounter.linePos(node.range[0]).line : fallback;
  }

  where(node: YamlNode | null | undefined, fallback = 1): string {
    return `${this.path}:${this.line(node, fallback)}`;
  }

  error(node: YamlNode | null | undefined, key: string, message: string): ConfigError {
    return new ConfigError(`${this.where(node)}: ${key}: ${message}`);
  }

  /** The pairs of a mapping, each with its key's node; anything but a mapping is an error naming `key`. */
  entries(node: YamlNode | null | undefined, key: string): { name: string; keyNode: YamlNode; value: YamlNode | null }[] {
    if (!isMap(node)) throw this.error(node, key, 'expected a mapping of keys');
    return (node as YAMLMap).items.map((pair) => {
      const keyNode = pair.key as YamlNode;
      return { name: isScalar(keyNode) ? String(keyNode.value) : String(keyNode), keyNode, value: (pair.value as YamlNode | null) ?? null };
    });
  }

  items(node: YamlNode | null | undefined, key: string): YamlNode[] {
    if (!isSeq(node)) throw this.error(node, key, 'expected a list');
    return (node as YAMLSeq).items as YamlNode[];
  }

  /** Rejects every key not in `known`, naming the ones that are. */
  checkKeys(entries: { name: string; keyNode: YamlNode }[], known: readonly string[], prefix: string): void {
    for (const entry of entries) {
      if (!known.includes(entry.name)) {
        throw this.error(entry.keyNode, `${prefix}${entry.name}`, `unknown key (known here: ${known.join(', ')})`);
      }
    }
  }

  string(node: YamlNode | null | undefined, key: string): string {
    const value = isScalar(node) ? node.value : undefined;
    if (typeof value === 'string' && value.trim() !== '') return value;
    if (typeof value === 'number' || typeof value === 'boolean') return String(value);
    throw this.error(node, key, 'expected a non-empty string');
  }

  value(node: YamlNode | null | undefined): unknown {
    return node && 'toJSON' in node ? (node as { toJSON(): unknown }).toJSON() : node;
  }

  isNull(node: YamlNode | null | undefined): boolean {
    return node === null || node === undefined || (isScalar(node) && node.value === null);
  }
}
