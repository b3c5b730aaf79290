import { Gauge, type Registry } from 'prom-client';

/** Whether the last reload of the config took, as Prometheus reports its own (prometheus_config_last_reload_*). */
export interface ReloadObserver {
  succeeded(): void;
  failed(): void;
}

export function registerReloadMetrics(registry: Registry): ReloadObserver {
  const successful = new Gauge({
    name: 'pgvector_exporter_config_last_reload_successful',
    help: 'Whether the last configuration reload attempt was successful (1) or rejected (0, the previous configuration keeps serving).',
    registers: [registry],
  });
  const timestamp = new Gauge({
    name: 'pgvector_exporter_config_last_reload_success_timestamp_seconds',
    help: 'Unix time of the last successful configuration load (the start counts as one).',
    registers: [registry],
  });
  const succeeded = () => {
    successful.set(1);
    timestamp.set(Date.now() / 1000);
  };
  // The configuration read at start is the first successful load.
  succeeded();
  return { succeeded, failed: () => successful.set(0) };
}
