// Rewrites the configuration reference block of README.md from src/config/schema.ts (via dist/).
import { readFileSync, writeFileSync } from 'node:fs';
import { withConfigReference } from '../dist/config/reference.js';

const path = new URL('../README.md', import.meta.url);
const before = readFileSync(path, 'utf8');
const after = withConfigReference(before);
if (after !== before) writeFileSync(path, after);
console.log(after === before ? 'README.md configuration reference is up to date' : 'README.md configuration reference regenerated');
