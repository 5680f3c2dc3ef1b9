// The package as users get it: `npm pack` holds exactly the module, its types and README, and the
// tarball installs offline into a fresh project that imports it and type-checks against it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, copyFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const PACKAGE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ROOT = path.resolve(PACKAGE, '..', '..');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const npmFlags = ['--no-audit', '--no-fund', '--loglevel=error'];

let work; // a temporary directory: the tarball and a fresh project
let packed; // npm pack's report

before(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'parley-client-'));
  const { stdout } = await run(NPM, ['pack', '--json', '--pack-destination', work, ...npmFlags], { cwd: PACKAGE });
  [packed] = JSON.parse(stdout);
  const project = path.join(work, 'project');
  await run('mkdir', [project]);
  await writeFile(path.join(project, 'package.json'), JSON.stringify({ name: 'try-parley', private: true, type: 'module' }));
  // --offline: a package without dependencies installs from its tarball with no registry at all
  await run(NPM, ['install', '--offline', ...npmFlags, path.join(work, packed.filename)], { cwd: project });
});

after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

test('the tarball holds the module, its declarations, the README and package.json, nothing else', async () => {
  const manifest = JSON.parse(await readFile(path.join(PACKAGE, 'package.json'), 'utf8'));
  assert.equal(packed.filename, `${manifest.name}-${manifest.version}.tgz`);
  assert.deepEqual(packed.files.map((f) => f.path).sort(), ['README.md', 'index.d.ts', 'package.json', 'src/index.js']);
  assert.deepEqual(manifest.dependencies ?? {}, {}); // no runtime dependencies
});

test('a fresh project imports the installed package by name and it works', async () => {
  const project = path.join(work, 'project');
  const script = `
    import { ParleyClient, decode, LIMITS } from 'parley-client';
    const frames = decode(JSON.stringify({ type: 'batch', events: [{ type: 'typing', id: 't', channel: 'general' }] }));
    const sent = [];
    class Socket { constructor(url) { this.url = url; queueMicrotask(() => this.onopen()); } send(d) { sent.push(JSON.parse(d)); } close() {} }
    const client = new ParleyClient({ url: 'ws://x/', token: 'a.eyJzdWIiOiJhbGljZSJ9.s', env: { WebSocket: Socket } });
    client.join('general');
    client.start();
    // the token source and the socket's open are microtasks: all done before the first macrotask
    setTimeout(() => { client.stop(); console.log(JSON.stringify({ types: frames.map((f) => f.type), sent, textMax: LIMITS.textMax })); }, 0);
  `;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: project });
  assert.deepEqual(JSON.parse(stdout), {
    types: ['typing'],
    sent: [{ action: 'channels' }, { action: 'join', channel: 'general' }],
    textMax: 4000,
  });
  const installed = await readFile(path.join(project, 'node_modules', 'parley-client', 'src', 'index.js'));
  assert.deepEqual(installed, await readFile(path.join(PACKAGE, 'src', 'index.js')));
});

async function typecheck(example) {
  const project = path.join(work, 'project');
  const tsc = createRequire(path.join(ROOT, 'package.json')).resolve('typescript/bin/tsc');
  await copyFile(path.join(PACKAGE, 'typecheck', example), path.join(project, example));
  const args = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022',
    '--lib', 'es2022,dom', example];
  return run(process.execPath, [tsc, ...args], { cwd: project }).then(
    () => ({ ok: true, out: '' }),
    (err) => ({ ok: false, out: err.stdout + err.stderr }),
  );
}

test('the declarations resolve from the installed package and type an ordinary program', async () => {
  const result = await typecheck('example.ts');
  assert.ok(result.ok, result.out);
});

test('the declarations refuse an unknown action, a message without text and a misread status', async () => {
  const result = await typecheck('misuse.ts');
  assert.equal(result.ok, false);
  const lines = [...result.out.matchAll(/misuse\.ts\((\d+),\d+\): error/g)].map((m) => Number(m[1]));
  assert.deepEqual([...new Set(lines)].sort((a, b) => a - b), [5, 6, 7], result.out);
});

test('every export of the module is declared in index.d.ts, and nothing more', async () => {
  const module = await import(path.join(PACKAGE, 'src', 'index.js'));
  const declarations = await readFile(path.join(PACKAGE, 'index.d.ts'), 'utf8');
  const declared = [...declarations.matchAll(/^export (?:const|function|class) (\w+)/gm)].map((m) => m[1]);
  assert.deepEqual([...new Set(declared)].sort(), Object.keys(module).sort());
});
