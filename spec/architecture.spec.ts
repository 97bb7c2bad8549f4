// The shape of the codebase: no import cycle between modules (at run time or
// through type-only imports), and the library's main entry loads no HTTP code.
import { execFileSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const lib = fileURLToPath(new URL('../lib/', import.meta.url));
const IMPORT = /^\s*(?:import|export)\s[^;]*?from\s+'(\.[^']+)\.js'/gms;

async function modules(): Promise<Map<string, string[]>> {
  const files = (await readdir(lib, { recursive: true })).filter((f) => f.endsWith('.ts'));
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const source = await readFile(join(lib, file), 'utf8');
    const deps = [...source.matchAll(IMPORT)].map((m) =>
      relative(lib, resolve(dirname(join(lib, file)), `${m[1]}.ts`)),
    );
    graph.set(file, deps);
  }
  return graph;
}

function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const walk = (node: string, path: string[]): void => {
    if (state.get(node) === 'done') return;
    if (state.get(node) === 'open') {
      found.push([...path.slice(path.indexOf(node)), node]);
      return;
    }
    state.set(node, 'open');
    for (const dep of graph.get(node) ?? []) walk(dep, [...path, node]);
    state.set(node, 'done');
  };
  for (const node of graph.keys()) walk(node, []);
  return found;
}

it('has no import cycle between lib modules, counting type-only imports', async () => {
  const graph = await modules();
  expect(graph.size).toBeGreaterThan(10);
  expect(graph.get('server/server.ts')).toContain('store.ts');
  expect(cycles(graph)).toEqual([]);
});

it('finds a cycle when there is one (the check can fail)', () => {
  const graph = new Map([
    ['a.ts', ['b.ts']],
    ['b.ts', ['c.ts']],
    ['c.ts', ['a.ts']],
  ]);
  expect(cycles(graph)).toEqual([['a.ts', 'b.ts', 'c.ts', 'a.ts']]);
});

function loadedBuiltins(specifier: string): string[] {
  const script = `await import(${JSON.stringify(specifier)}); console.log(JSON.stringify(process.moduleLoadList));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    encoding: 'utf8',
  });
  return JSON.parse(out) as string[];
}

it('loads no HTTP code through the main entry; the server entry does', () => {
  expect(loadedBuiltins('maildir-filestore')).not.toContain('NativeModule http');
  expect(loadedBuiltins('maildir-filestore/server')).toContain('NativeModule http');
});

it('imports the runtime dependencies (busboy, prom-client) only in lib/server/, as the README says', async () => {
  const { dependencies = {} } = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as {
    dependencies?: Record<string, string>;
  };
  const files = (await readdir(lib, { recursive: true })).filter((f) => f.endsWith('.ts'));
  const importers = new Map<string, string[]>();
  for (const file of files) {
    const source = await readFile(join(lib, file), 'utf8');
    for (const name of Object.keys(dependencies))
      if (source.includes(`from '${name}'`)) importers.set(name, [...(importers.get(name) ?? []), file]);
  }
  expect([...importers.keys()].sort()).toEqual(Object.keys(dependencies).sort());
  for (const [name, users] of importers)
    expect(
      users.filter((file) => !file.startsWith('server/')),
      name,
    ).toEqual([]);
});

it("imports no devDependency and no package's private file: an installed copy has only the dependencies, and only their exports", async () => {
  const { dependencies = {} } = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as {
    dependencies?: Record<string, string>;
  };
  const files = (await readdir(lib, { recursive: true })).filter((f) => f.endsWith('.ts'));
  const bare = /^\s*(?:import|export)\s[^;]*?from\s+'([^'.][^']*)'|import\(\s*'([^'.][^']*)'\s*\)/gms;
  const outside: string[] = [];
  for (const file of files) {
    const source = await readFile(join(lib, file), 'utf8');
    for (const m of source.matchAll(bare)) {
      const specifier = (m[1] ?? m[2]) as string;
      if (specifier.startsWith('node:')) continue;
      // a bare package name, or its scope and name: anything deeper is a file its exports map may hide
      if (!Object.hasOwn(dependencies, specifier)) outside.push(`${file}: ${specifier}`);
    }
  }
  expect(outside).toEqual([]);
});
