/**
 * pg (lib/stream.js) tells Cloudflare Workers from Node at import time by constructing a `Response` when
 * there is no `navigator`, and Node 20 has none. `Response` is a lazy global: touching it loads node's
 * bundled undici (fetch, its WebAssembly HTTP parser), about 3 MiB resident that no command uses, and a
 * process without WebAssembly (--lite-mode, --jitless) dies there. cli.ts imports this module before
 * anything else, so `Response` reads undefined while the modules load, and restoreFetchGlobals() puts it
 * back once the command's modules have. Node >= 21 has `navigator`, and pg never gets to `Response`.
 */
const saved = Object.getOwnPropertyDescriptor(globalThis, 'Response');
const hidden = saved !== undefined && (globalThis as { navigator?: unknown }).navigator === undefined;
if (hidden) Object.defineProperty(globalThis, 'Response', { value: undefined, configurable: true, writable: true });

export function restoreFetchGlobals(): void {
  if (hidden) Object.defineProperty(globalThis, 'Response', saved);
}
