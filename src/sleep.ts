/**
 * Waits `ms`, but returns early (without throwing) when the signal aborts: shutdown must not wait out
 * a pause. The one sleep of the code base: jobs' batch pauses, the demo's summary loop, benchmarks.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}
