import pg from 'pg';
import { seedCorpus as seedDemoCorpus } from '../src/demo/corpus.js';
import type { BenchDatabase } from './database.js';

export interface SeedResult {
  documents: number;
  seconds: number;
  indexSeconds: number;
}

/** The demo's synthetic corpus (documents, metadata, concepts, source lines, clustered 3,072-dim embeddings, HNSW index). */
export async function seedCorpus(db: BenchDatabase, documents: number, progress: (line: string) => void): Promise<SeedResult> {
  const pool = new pg.Pool({ connectionString: db.url(), application_name: 'bench-seed', max: 2 });
  pool.on('error', () => undefined);
  const started = performance.now();
  let lastReport = 0;
  try {
    const result = await seedDemoCorpus(pool, {
      documents,
      onProgress: (p) => {
        const now = performance.now();
        if (p.phase !== 'analyze' && now - lastReport < 2000 && p.done < p.total) return;
        lastReport = now;
        progress(p.phase === 'analyze' ? 'analyze' : `${p.phase} ${p.done}/${p.total}`);
      },
    });
    return { documents: result.documents, seconds: (performance.now() - started) / 1000, indexSeconds: result.indexMs / 1000 };
  } finally {
    await pool.end();
  }
}
