import type { Registry } from 'prom-client';
import type { Collector } from '../collectors/collector.js';
import { COLLECTOR_NAMES, COLLECTOR_SCOPES, createCollectors } from '../collectors/index.js';
import type { Config } from '../config/schema.js';
import { customCollector } from '../custom/collector.js';
import { loadCustomCollectors, type OwnedNames } from '../custom/load.js';
import type { CollectorSchedule } from '../poller/poller.js';
import { collectorSchedules, collectorsOptions, customCollectorSchedule, customCollectorsSources, enabledCollectorNames } from './assembly.js';

/**
 * Every collector the config asks for, built-in and custom, with its schedule and a fingerprint (what it
 * is beyond its name). One set per poller: collectors keep state between polls.
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

/**
 * One loaded config's collectors: the custom collector files are read and validated once, here (at start
 * and on each reload), so a bad file throws a ConfigError before anything changes; `set()` then builds
 * fresh collectors from what was read, as often as pollers need them (each watched database, each
 * /probe target), without reading a file again. A file changed on disk takes effect at the next reload.
 */
export interface LoadedCollectors {
  set(scope?: CollectorScope): CollectorSet;
}

export function loadCollectors(config: Config, registry: Registry): LoadedCollectors {
  const options = collectorsOptions(config);
  const names = enabledCollectorNames(config);
  // Custom collectors may not take a built-in family's name, whichever scope either runs in.
  const custom = loadCustomCollectors(customCollectorsSources(config), ownedNames(createCollectors(names, options), registry));
  const builtInSchedules = collectorSchedules(config);
  const schedules = new Map<string, CollectorSchedule>();
  const fingerprints = new Map<string, string>();
  // The built-in collectors' options as the assembly hands them down: a change to them restarts the
  // built-in collectors; a change elsewhere (jobs, web, a custom file) does not.
  const shared = JSON.stringify(options);
  for (const name of names) {
    const schedule = builtInSchedules[name];
    schedules.set(name, schedule);
    fingerprints.set(name, JSON.stringify(['built-in', schedule, shared]));
  }
  for (const definition of custom) {
    const schedule = customCollectorSchedule(definition, config);
    schedules.set(definition.name, schedule);
    // declaredAt is left out: a collector that only moved within its file is unchanged.
    const { declaredAt: _at, ...what } = definition;
    fingerprints.set(definition.name, JSON.stringify(['custom', schedule, what, definition.metrics.map(({ declaredAt: _m, ...m }) => m)]));
  }
  const schedule = (name: string) => schedules.get(name)!;
  const fingerprint = (name: string) => fingerprints.get(name)!;
  return {
    set(scope = 'every') {
      const builtIn = createCollectors(scope === 'every' ? names : names.filter((name) => COLLECTOR_SCOPES[name] === scope), options);
      const definitions = scope === 'every' ? custom : custom.filter((d) => (d.databases === 'all') === (scope === 'database'));
      return { collectors: [...builtIn, ...definitions.map(customCollector)], schedule, fingerprint };
    },
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
