// Validate an AsyncAPI document with the AsyncAPI parser (`@asyncapi/parser`, its spec schema and
// Spectral rules): `node scripts/validate_asyncapi.mjs [docs/asyncapi.yaml]`. Exit 0 when it has no
// error-level diagnostic, else 1 with each diagnostic on stderr. `make asyncapi` runs it.

import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { Parser } from '@asyncapi/parser';

const ERROR = 0; // DiagnosticSeverity.Error

/** The document's error-level diagnostics (an empty list: valid). */
export async function validate(file) {
  const parser = new Parser();
  const diagnostics = await parser.validate(await readFile(file, 'utf8'), { source: path.resolve(file) });
  return diagnostics
    .filter((d) => d.severity === ERROR)
    .map((d) => `${d.path.join('.') || '(document)'}: ${d.message} [${d.code}]`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const file = process.argv[2] ?? path.join(here, '..', 'docs', 'asyncapi.yaml');
  const errors = await validate(file);
  for (const line of errors) console.error(line);
  console.log(errors.length ? `${file}: ${errors.length} error(s)` : `${file}: valid AsyncAPI`);
  process.exitCode = errors.length ? 1 : 0;
}
