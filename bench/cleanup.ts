/**
 * Everything the benchmark starts (clusters, child processes, temp dirs) registers its teardown
 * here; teardowns run in reverse order once, on success, on failure and on SIGINT/SIGTERM, so an
 * interrupted run leaves no server, exporter or temp directory behind.
 */
type Teardown = () => unknown | Promise<unknown>;

const teardowns: { label: string; fn: Teardown }[] = [];
let running: Promise<void> | undefined;

export function onCleanup(label: string, fn: Teardown): () => void {
  const entry = { label, fn };
  teardowns.push(entry);
  return () => {
    const i = teardowns.indexOf(entry);
    if (i >= 0) teardowns.splice(i, 1);
  };
}

export function cleanupAll(): Promise<void> {
  running ??= (async () => {
    while (teardowns.length > 0) {
      const { label, fn } = teardowns.pop()!;
      try {
        await fn();
      } catch (err) {
        console.error(`cleanup of ${label} failed: ${(err as Error).message}`);
      }
    }
  })();
  return running;
}

/** On a signal: clean up, then exit 130/143 as a shell would. A second signal exits at once. */
export function installSignalHandlers(): void {
  const handler = (signal: NodeJS.Signals) => {
    console.error(`\n${signal}: cleaning up`);
    process.once(signal, () => process.exit(1));
    void cleanupAll().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
}

/** Runs a benchmark's main, then cleans up whatever it started; a failure is one message and exit code 1. */
export function runBenchmark(main: () => Promise<void>): void {
  main()
    .then(() => cleanupAll())
    .catch(async (err: unknown) => {
      console.error(`benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      await cleanupAll();
      process.exitCode = 1;
    });
}
