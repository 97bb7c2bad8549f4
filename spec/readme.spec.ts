// The README's and docs/'s examples run as written, against the built package,
// and their links lead somewhere.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { FileStore } from '../lib/index.js';
import { DOC_FILES, docBlock, docBlocks, docPath, docText } from './doc-blocks.js';
import { DIST, tempDir } from './helpers.js';

const run = promisify(execFile);

it('the README has its example', () => {
  expect(docBlocks().filter((block) => block.file === 'README.md').length).toBeGreaterThanOrEqual(1);
});

it('the main example commits a file and claims it', async () => {
  const example = docBlock('readme-example', 'js');
  const cwd = await tempDir();
  const script = join(cwd, 'example.mjs');
  await writeFile(script, example.replaceAll("'maildir-filestore'", JSON.stringify(DIST)));
  const { stdout } = await run(process.execPath, [script], { cwd });
  const claimed = await readdir(join(cwd, 'queue', 'cur'));
  expect(claimed).toHaveLength(1);
  expect(stdout).toBe(`claimed ${claimed[0]}\n`);
  expect(await readdir(join(cwd, 'queue', 'new'))).toEqual([]);
  expect(await readFile(join(cwd, 'queue', 'cur', claimed[0] as string), 'utf8')).toBe('hello, world');
});

it('every marked example of the README and docs/ is run by a spec', () => {
  const specs = readdirSync(new URL('./', import.meta.url))
    .filter((name) => name.endsWith('.ts'))
    .map((name) => readFileSync(new URL(name, import.meta.url), 'utf8'))
    .join('\n');
  const markers = docBlocks().map((block) => block.marker);
  expect(new Set(markers).size, 'each marker is used once').toBe(markers.length);
  for (const marker of markers) expect(specs, marker).toContain(`'${marker}'`);
});

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces as dashes. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchors(file: string): Set<string> {
  const text = docText(file).replace(/```[\s\S]*?```/g, '');
  return new Set([...text.matchAll(/^#+ (.*)$/gm)].map((m) => slug(m[1]!)));
}

describe.each(DOC_FILES)('links in %s', (file) => {
  it('lead to files and headings that exist', () => {
    const text = docText(file).replace(/```[\s\S]*?```/g, '');
    const broken: string[] = [];
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue;
      const [path, anchor] = target!.split('#') as [string, string | undefined];
      const linked = path === '' ? file : posix.normalize(posix.join(posix.dirname(file), path));
      if (!existsSync(join(dirname(docPath('README.md')), linked))) broken.push(target!);
      else if (anchor !== undefined && (!linked.endsWith('.md') || !anchors(linked).has(anchor))) broken.push(target!);
    }
    expect(broken).toEqual([]);
  });
});

it('the README names every runtime dependency and says what it is for', async () => {
  const { dependencies = {} } = JSON.parse(await readFile('package.json', 'utf8')) as {
    dependencies?: Record<string, string>;
  };
  const install = docText('README.md').split('\n## Install\n')[1]?.split('\n## ')[0] ?? '';
  expect(install).toMatch(
    new RegExp(`${['Zero', 'One', 'Two', 'Three'][Object.keys(dependencies).length]} runtime dependenc`),
  );
  for (const name of Object.keys(dependencies)) expect(install).toContain(name);
});

describe('the API table and docs/api.md', () => {
  const methods = Object.getOwnPropertyNames(FileStore.prototype).filter((name) => name !== 'constructor');

  it("list every public method of FileStore: a row of the README's table, a heading of docs/api.md", () => {
    const readme = docText('README.md');
    const headings = [...docText('docs/api.md').matchAll(/^## `store\.(\w+)\(/gm)].map((m) => m[1]);
    expect(methods.length).toBeGreaterThan(10);
    for (const name of methods) expect(readme, name).toContain(`| [\`store.${name}(`);
    expect(headings.sort()).toEqual([...methods].sort());
  });

  it('list every error code of FileStoreError in the table of docs/api.md#errors', () => {
    const codes = [...readFileSync(new URL('../lib/errors.ts', import.meta.url), 'utf8').matchAll(/^\s+\| '(\w+)'/gm)];
    const table = docText('docs/api.md').split('\n## Errors\n')[1]?.split('\n## ')[0] ?? '';
    expect(codes.length).toBeGreaterThan(5);
    for (const [, code] of codes) expect(table, code).toContain(`| \`${code}\` |`);
  });
});
