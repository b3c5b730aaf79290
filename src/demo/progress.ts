import type { SeedProgress } from './corpus.js';

/**
 * The seeding progress bar: redrawn in place on a terminal, a line per 10 % (and per phase) when
 * the output is a file or a pipe, so CI logs stay readable.
 */
export interface ProgressReporter {
  update(progress: SeedProgress): void;
  /** Ends the in-place line on a terminal. */
  finish(): void;
}

const WIDTH = 30;

function describe(progress: SeedProgress): { label: string; ratio?: number; detail: string } {
  if (progress.phase === 'analyze') return { label: 'analyze', detail: 'ANALYZE the seeded tables' };
  const ratio = progress.total > 0 ? progress.done / progress.total : 1;
  if (progress.phase === 'documents') return { label: 'seeding', ratio, detail: `${progress.done}/${progress.total} chunks with embeddings` };
  return { label: 'indexing', ratio, detail: `HNSW idx_embeddings_vector: ${progress.step} (${progress.done}/${progress.total} tuples)` };
}

function bar(ratio: number): string {
  const filled = Math.round(Math.max(0, Math.min(1, ratio)) * WIDTH);
  return `[${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${String(Math.floor(ratio * 100)).padStart(3)}%`;
}

export function progressReporter(out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number }): ProgressReporter {
  const tty = Boolean(out.isTTY);
  let lastPhase = '';
  let lastTenth = -1;
  let open = false;
  return {
    update(progress) {
      const { label, ratio, detail } = describe(progress);
      const line = `${label.padEnd(9)}${ratio === undefined ? '' : `${bar(ratio)} `}${detail}`;
      if (tty) {
        // Each phase keeps its last state on a line of its own.
        if (open && progress.phase !== lastPhase) out.write('\n');
        lastPhase = progress.phase;
        const width = out.columns ?? 100;
        out.write(`\r${line.slice(0, width - 1).padEnd(width - 1)}`);
        open = true;
        return;
      }
      const tenth = ratio === undefined ? 10 : Math.floor(ratio * 10);
      if (progress.phase !== lastPhase || tenth > lastTenth) {
        out.write(`${line}\n`);
        lastPhase = progress.phase;
        lastTenth = tenth;
      }
    },
    finish() {
      if (tty && open) out.write('\n');
      open = false;
    },
  };
}
