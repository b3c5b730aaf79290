import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

/**
 * bcrypt comparisons on worker threads, off the event loop.
 *
 * bcryptjs's async compare yields every 100 ms, but the CPU it burns is still the event loop's, and Node
 * accepts one new connection per turn of the loop: with two comparisons running, a plain http server took
 * 40 s to accept 200 connections (0.16 s idle). So a flood of wrong passwords held up, for seconds, the
 * scrapes and probes that came after it, though they needed no comparison at all (a verified pair comes from
 * the cache, the probes need no auth): a Kubernetes liveness probe would time out.
 *
 * A thread is started when a comparison finds none free; how many run at once is the caller's limit (basic
 * auth's 2). Threads idle for `idleMs` are ended: each holds about 15 MiB (8 MiB in the image's lite mode), and
 * with the cache of verified pairs a scraper's password is compared once per restart. The threads never keep the process alive.
 */
export interface BcryptThreadsOptions {
  /** How long a thread may sit idle before it is ended. Default 30 s. */
  idleMs?: number;
  /** The bcrypt module the threads import (a test gives one that fails). Default bcryptjs. */
  moduleUrl?: string;
}

export class BcryptThreads {
  private readonly live = new Set<Worker>();
  /** The idle threads, each with the timer that ends it. */
  private readonly idle = new Map<Worker, NodeJS.Timeout>();
  private readonly idleMs: number;
  private readonly moduleUrl: string;

  constructor(options: BcryptThreadsOptions = {}) {
    this.idleMs = options.idleMs ?? 30_000;
    this.moduleUrl = options.moduleUrl ?? pathToFileURL(createRequire(import.meta.url).resolve('bcryptjs')).href;
  }

  /** Threads alive now, busy or idle. */
  get threads(): number {
    return this.live.size;
  }

  compare(password: string, hash: string): Promise<boolean> {
    const worker = this.take() ?? this.start();
    return new Promise<boolean>((resolve, reject) => {
      const settled = () => {
        worker.off('message', answered);
        worker.off('error', errored);
        worker.off('exit', exited);
      };
      const answered = (ok: unknown) => {
        settled();
        this.giveBack(worker);
        resolve(ok === true);
      };
      const failed = (why: string) => {
        settled();
        reject(new Error(`the bcrypt thread ended: ${why}`));
      };
      const errored = (err: Error) => failed(err.message);
      const exited = (code: number) => failed(`exit code ${code}`);
      worker.once('message', answered);
      worker.once('error', errored);
      worker.once('exit', exited);
      worker.postMessage({ password, hash });
    });
  }

  private take(): Worker | undefined {
    const worker = this.idle.keys().next().value;
    if (worker) this.forget(worker);
    return worker;
  }

  private giveBack(worker: Worker): void {
    const timer = setTimeout(() => {
      this.forget(worker);
      void worker.terminate();
    }, this.idleMs);
    timer.unref();
    this.idle.set(worker, timer);
  }

  /** Takes a thread off the idle list and stops its timer. */
  private forget(worker: Worker): void {
    clearTimeout(this.idle.get(worker));
    this.idle.delete(worker);
  }

  private start(): Worker {
    // An ESM-or-script body (eval threads run as CommonJS, or as a module under --input-type=module), and no
    // execArgv of the parent's (--cpu-prof, --input-type) carried into the thread.
    const worker = new Worker(THREAD, { eval: true, workerData: this.moduleUrl, execArgv: [] });
    worker.unref();
    this.live.add(worker);
    // A thread that fails (bcryptjs not loadable, out of memory) ends: the comparison waiting on it is
    // rejected with the error, and an idle one is dropped. Without a listener 'error' would throw.
    worker.on('error', () => undefined);
    worker.once('exit', () => {
      this.live.delete(worker);
      this.forget(worker);
    });
    return worker;
  }
}

const THREAD = `(async () => {
  const { parentPort, workerData } = await import('node:worker_threads');
  const bcrypt = (await import(workerData)).default;
  parentPort.on('message', ({ password, hash }) => {
    let ok = false;
    try {
      ok = bcrypt.compareSync(password, hash);
    } catch {
      ok = false;
    }
    parentPort.postMessage(ok);
  });
})();`;
