import type { Registry } from 'prom-client';
import type { Collector } from '../collectors/collector.js';
import { COLLECTOR_NAMES, COLLECTOR_SCOPES, createCollectors, type CollectorName } from '../collectors/index.js';
import type { Config } from '../config/schema.js';
import { customCollector } from '../custom/collector.js';
import { loadCustomCollectors, type OwnedNames } from '../custom/load.js';
import type { CollectorSchedule } from '../poller/poller.js';
import { collectorSchedules, collectorsOptions, customCollectorSchedule, customCollectorsSources, enabledCollectorNames } from './assembly.js';

/**
 * Every collector the config asks for, built-in and custom, with its schedule and a fingerprint (what it
 * is beyond its name). Built at start and on every reload; building it reads and validates the collector
 * files, so a bad file throws a ConfigError before anything changes.
 */
export interface CollectorSet {
  collectors: Collector[];
  schedule: (name: string) => CollectorSchedule;
  fingerprint: (name: string) => string;
}

/**
 * Which collectors: `every` (one database watched), or with auto-discovery `server` (the primary
 * connection's: server-scoped built-ins, custom collectors with `databases: primary`) or `database`
 * (one watched database's: database-scoped built-ins, custom collectors with `databases: all`).
 */
export type CollectorScope = 'every' | 'server' | 'database';

export function collectorSet(config: Config, registry: Registry, scope: CollectorScope = 'every'): CollectorSet {
  const options = collectorsOptions(config);
  const enabled = createCollectors(enabledCollectorNames(config), options);
  // Custom collectors may not take a built-in family's name, whichever scope either runs in.
  const custom = loadCustomCollectors(customCollectorsSources(config), ownedNames(enabled, registry));
  const builtIn = scope === 'every' ? enabled : enabled.filter((c) => COLLECTOR_SCOPES[c.name as CollectorName] === scope);
  const definitions = scope === 'every' ? custom : custom.filter((d) => (d.databases === 'all') === (scope === 'database'));
  const builtInSchedules = collectorSchedules(config);
  const schedules = new Map<string, CollectorSchedule>();
  const fingerprints = new Map<string, string>();
  // The built-in collectors' options as the assembly hands them down: a change to them restarts the
  // built-in collectors; a change elsewhere (jobs, web, a custom file) does not.
  const shared = JSON.stringify(options);
  for (const collector of builtIn) {
    const schedule = builtInSchedules[collector.name as CollectorName];
    schedules.set(collector.name, schedule);
    fingerprints.set(collector.name, JSON.stringify(['built-in', schedule, shared]));
  }
  for (const definition of definitions) {
    const schedule = customCollectorSchedule(definition, config);
    schedules.set(definition.name, schedule);
    // declaredAt is left out: a collector that only moved within its file is unchanged.
    const { declaredAt: _at, ...what } = definition;
    fingerprints.set(definition.name, JSON.stringify(['custom', schedule, what, definition.metrics.map(({ declaredAt: _m, ...m }) => m)]));
  }
  return {
    collectors: [...builtIn, ...definitions.map(customCollector)],
    schedule: (name) => schedules.get(name)!,
    fingerprint: (name) => fingerprints.get(name)!,
  };
}

/** The names custom collectors may not take: every family the exporter publishes already, and the built-in collectors. */
function ownedNames(builtIn: readonly Collector[], registry: Registry): OwnedNames {
  const families = new Map<string, string>();
  for (const collector of builtIn) {
    for (const family of collector.families) {
      const owner = `the built-in collector "${collector.name}" (collectors.${collector.name}.enabled: false turns it off)`;
      for (const name of family.type === 'histogram' ? [family.name, `${family.name}_bucket`, `${family.name}_sum`, `${family.name}_count`] : [family.name]) {
        families.set(name, owner);
      }
    }
  }
  for (const metric of registry.getMetricsAsArray()) families.set(metric.name, 'the exporter itself');
  return { families, collectors: new Set<string>(COLLECTOR_NAMES) };
}
