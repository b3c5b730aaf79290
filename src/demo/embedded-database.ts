import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FatalError } from '../errors.js';
import { findPostgresBinDir, LocalCluster } from '../local-cluster/cluster.js';

/**
 * The demo's default database: a throwaway local cluster from the installed PostgreSQL server
 * binaries with pgvector. Where they are missing, root on a Debian-like machine gets them installed
 * by scripts/setup-system.sh; anyone else is told the one command to run.
 */
export const SETUP_SCRIPT = fileURLToPath(new URL('../../scripts/setup-system.sh', import.meta.url));
const SETUP_COMMAND = 'sudo bash scripts/setup-system.sh';

/** Debian's layout: /usr/lib/postgresql/<major>/bin next to /usr/share/postgresql/<major>/extension. */
function pgvectorInstalled(binDir: string): boolean {
  const major = basename(dirname(binDir));
  if (!/^\d+$/.test(major) || !existsSync(`/usr/share/postgresql/${major}`)) return true; // other layouts: migrate checks
  return existsSync(`/usr/share/postgresql/${major}/extension/vector.control`);
}

function serverReady(): boolean {
  const binDir = findPostgresBinDir();
  return binDir !== undefined && pgvectorInstalled(binDir);
}

/** What ensureServerBinaries asks of the machine; tests substitute their own. */
export interface SetupProbe {
  serverReady(): boolean;
  /** Root, apt and the set-up script: the machine allows installing the packages. */
  canInstall(): boolean;
  /** Runs the set-up script with its output on the terminal; resolves to its exit status. */
  runSetup(): number | null;
}

export const SYSTEM_PROBE: SetupProbe = {
  serverReady,
  canInstall: () => process.getuid?.() === 0 && existsSync('/usr/bin/apt-get') && existsSync(SETUP_SCRIPT),
  runSetup: () => spawnSync('bash', [SETUP_SCRIPT], { stdio: 'inherit' }).status,
};

export function ensureServerBinaries(out: (line: string) => void, probe: SetupProbe = SYSTEM_PROBE): void {
  if (probe.serverReady()) return;
  if (!probe.canInstall()) {
    throw new FatalError(
      `PostgreSQL server binaries with pgvector are not installed; install them with "${SETUP_COMMAND}" (or run the demo against a database with --database-url URL)`,
    );
  }
  out(`PostgreSQL with pgvector not found: running ${SETUP_SCRIPT} (installs from Debian's archive)`);
  const status = probe.runSetup();
  if (status !== 0 || !probe.serverReady()) {
    throw new FatalError(`${SETUP_SCRIPT} did not install PostgreSQL with pgvector (exit ${status}); see its output above`);
  }
}

/** Settings for a small demo box: statements and I/O timing tracked for the statements collector. */
export async function startEmbeddedCluster(): Promise<LocalCluster> {
  return LocalCluster.start({
    settings: {
      shared_buffers: "'256MB'",
      log_min_duration_statement: '-1',
    },
  });
}
