/**
 * Splits a SQL script into statements at top-level semicolons, aware of quotes, dollar quoting
 * and comments, so a failing migration can name the statement (and its line) that failed.
 */
export interface ScriptStatement {
  text: string;
  /** 1-based line of the statement's first character in the script. */
  line: number;
}

export function splitSqlScript(script: string): ScriptStatement[] {
  const statements: ScriptStatement[] = [];
  let start = 0;
  let i = 0;
  const push = (end: number) => {
    const raw = script.slice(start, end);
    const text = raw.trim();
    if (text && !isOnlyComments(text)) {
      const leading = raw.length - raw.trimStart().length;
      statements.push({ text, line: lineOf(script, start + leading) });
    }
  };
  while (i < script.length) {
    const ch = script[i]!;
    const next = script[i + 1];
    if (ch === '-' && next === '-') {
      i = indexOrEnd(script, '\n', i);
    } else if (ch === '/' && next === '*') {
      i = indexOrEnd(script, '*/', i + 2) + 2;
    } else if (ch === "'" || ch === '"') {
      i = skipQuoted(script, i, ch);
    } else if (ch === '$') {
      const tag = /^\$[A-Za-z_]?[A-Za-z0-9_]*\$/.exec(script.slice(i))?.[0];
      if (tag) {
        i = indexOrEnd(script, tag, i + tag.length) + tag.length;
      } else {
        i += 1;
      }
    } else if (ch === ';') {
      push(i);
      start = i + 1;
      i += 1;
    } else {
      i += 1;
    }
  }
  push(script.length);
  return statements;
}

function indexOrEnd(text: string, needle: string, from: number): number {
  const at = text.indexOf(needle, from);
  return at === -1 ? text.length : at;
}

function skipQuoted(text: string, from: number, quote: string): number {
  let i = from + 1;
  while (i < text.length) {
    if (text[i] === quote) {
      if (text[i + 1] === quote) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i += 1;
  }
  return i;
}

function isOnlyComments(text: string): boolean {
  return text.replace(/--[^\n]*/g, '').replace(/\/\*[\s\S]*?\*\//g, '').trim() === '';
}

function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i += 1) if (text[i] === '\n') line += 1;
  return line;
}
