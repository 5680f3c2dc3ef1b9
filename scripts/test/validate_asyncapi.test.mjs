// docs/asyncapi.yaml is valid AsyncAPI, and the validator really refuses broken documents.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { validate } from '../validate_asyncapi.mjs';

const SPEC = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs', 'asyncapi.yaml');

async function brokenCopy(edit) {
  const dir = await mkdtemp(path.join(tmpdir(), 'asyncapi-'));
  const file = path.join(dir, 'asyncapi.yaml');
  const text = await readFile(SPEC, 'utf8');
  const changed = edit(text);
  assert.notEqual(changed, text, 'the edit must change the document');
  await writeFile(file, changed);
  return file;
}

test('the committed spec has no error', async () => {
  assert.deepEqual(await validate(SPEC), []);
});

test('an operation with an action AsyncAPI does not know is refused', async () => {
  const file = await brokenCopy((t) => t.replace('    action: receive\n', '    action: listen\n'));
  const errors = await validate(file);
  assert.ok(errors.some((e) => e.startsWith('operations.receive_join')), errors.join('\n'));
});

test('a reference to a message that does not exist is refused', async () => {
  const file = await brokenCopy((t) => t.replace("$ref: '#/components/messages/join'", "$ref: '#/components/messages/nope'"));
  const errors = await validate(file);
  assert.ok(errors.some((e) => e.includes('nope') || e.includes('channels.parley.messages.join')), errors.join('\n'));
});

test('a schema that is not a schema is refused', async () => {
  const file = await brokenCopy((t) => t.replace('            discriminator: type\n', '            discriminator: {propertyName: type}\n'));
  assert.notDeepEqual(await validate(file), []);
});
