/**
 * What the demo must undo, in reverse order of creation. Each step has an asynchronous form for
 * an orderly stop and, where possible, a synchronous one for the process 'exit' handler (a second
 * Ctrl-C, an uncaught error): no helper process and no temp directory outlives the demo.
 */
interface Step {
  name: string;
  run: () => Promise<void>;
  runSync?: () => void;
  done: boolean;
}

export class Teardown {
  private readonly steps: Step[] = [];

  add(name: string, run: () => Promise<void>, runSync?: () => void): void {
    this.steps.push({ name, run, runSync, done: false });
  }

  /** Runs every remaining step, newest first; a failing step is reported and the others still run. */
  async run(onError: (name: string, error: Error) => void): Promise<void> {
    for (const step of [...this.steps].reverse()) {
      if (step.done) continue;
      step.done = true;
      try {
        await step.run();
      } catch (err) {
        onError(step.name, err as Error);
        step.runSync?.();
      }
    }
  }

  runSync(): void {
    for (const step of [...this.steps].reverse()) {
      if (step.done) continue;
      step.done = true;
      try {
        step.runSync?.();
      } catch {
        /* best effort while exiting */
      }
    }
  }
}
