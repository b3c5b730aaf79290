/**
 * Sections of docs/benchmarks.md written by separate benchmark scripts (e.g. `npm run bench:custom`),
 * between `<!-- section:NAME -->` and `<!-- /section:NAME -->`: each script replaces only its own, and the
 * full `npm run bench`, which rewrites the file, carries them over.
 */
const begin = (name: string) => `<!-- section:${name} -->`;
const end = (name: string) => `<!-- /section:${name} -->`;

/** The document with section `name` set to `body` (appended at the end when it is not there yet). */
export function withSection(doc: string, name: string, body: string): string {
  const block = `${begin(name)}\n${body.trim()}\n${end(name)}`;
  const start = doc.indexOf(begin(name));
  const stop = doc.indexOf(end(name));
  if (start >= 0 && stop > start) return `${doc.slice(0, start)}${block}${doc.slice(stop + end(name).length)}`;
  return `${doc.trimEnd()}\n\n${block}\n`;
}

/** Every section block of `from`, carried into `to` (a freshly rendered report). */
export function carrySections(from: string, to: string): string {
  let out = to;
  for (const m of from.matchAll(/<!-- section:([\w-]+) -->\n([\s\S]*?)\n<!-- \/section:\1 -->/g)) out = withSection(out, m[1]!, m[2]!);
  return out;
}
