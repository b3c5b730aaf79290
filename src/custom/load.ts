import { ConfigError } from '../errors.js';
import { readCollectorFile } from './collector-file.js';
import { seriesNames, type CustomCollectorDefinition } from './definition.js';
import { readQueriesYaml } from './queries-yaml.js';

/** Where custom collectors come from: our own collector files, and postgres_exporter's queries.yaml. */
export interface CustomCollectorSources {
  files: readonly string[];
  queryPath?: string;
}

/** What the exporter already publishes: family name -> who publishes it; and the built-in collectors' names. */
export interface OwnedNames {
  families: ReadonlyMap<string, string>;
  collectors: ReadonlySet<string>;
}

/**
 * Reads and validates every custom collector, as a whole: any problem is one ConfigError naming
 * file:line and the key (exit 2 at start; on reload the old collectors keep serving).
 */
export function loadCustomCollectors(sources: CustomCollectorSources, owned: OwnedNames): CustomCollectorDefinition[] {
  const definitions = [...sources.files.flatMap((file) => readCollectorFile(file)), ...(sources.queryPath ? readQueriesYaml(sources.queryPath) : [])];
  checkNames(definitions, owned);
  return definitions;
}

function checkNames(definitions: readonly CustomCollectorDefinition[], owned: OwnedNames): void {
  const collectors = new Map<string, string>();
  const families = new Map<string, string>();
  for (const definition of definitions) {
    if (owned.collectors.has(definition.name)) {
      throw new ConfigError(`${definition.declaredAt}: ${definition.name}: "${definition.name}" is the name of a built-in collector; choose another`);
    }
    const previous = collectors.get(definition.name);
    if (previous) throw new ConfigError(`${definition.declaredAt}: ${definition.name}: a collector of this name is already declared at ${previous}`);
    collectors.set(definition.name, definition.declaredAt);
    for (const metric of definition.metrics) {
      for (const name of seriesNames(metric)) {
        const builtIn = owned.families.get(name);
        if (builtIn) {
          throw new ConfigError(`${metric.declaredAt}: ${metric.name}: "${name}" is already published by ${builtIn}; rename it or turn that off`);
        }
        const other = families.get(name);
        if (other) throw new ConfigError(`${metric.declaredAt}: ${metric.name}: "${name}" is already published by the custom metric declared at ${other}`);
        families.set(name, metric.declaredAt);
      }
    }
  }
}
