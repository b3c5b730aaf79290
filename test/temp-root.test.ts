import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { expect, test } from 'vitest';

// The run's temp root (test/helpers/global-setup.ts) reaches the forked workers: every mkdtemp of a test
// lands under it, and it is removed at teardown, so a run leaves nothing in the machine's /tmp.
test('temp files of a test worker go under the run temp root, which belongs to the live vitest process', () => {
  const root = tmpdir();
  expect(basename(root)).toMatch(/^pgve-test-run-/);
  const pid = Number(readFileSync(join(root, 'pid'), 'utf8'));
  expect(pid).toBe(process.ppid);
  expect(existsSync(dirname(root))).toBe(true);
});
