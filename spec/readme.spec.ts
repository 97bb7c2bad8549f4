// The README's examples run as written, against the built package.
import { execFile } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { DIST, tempDir } from './helpers.js';

const run = promisify(execFile);

/** The fenced blocks that follow a `<!-- readme-example -->` marker. */
async function examples(): Promise<string[]> {
  const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
  return [...readme.matchAll(/<!-- readme-example -->\s*```js\n([\s\S]*?)```/g)].map((m) => m[1] as string);
}

it('the README has its example', async () => {
  expect((await examples()).length).toBeGreaterThanOrEqual(1);
});

it('the main example commits a file and claims it', async () => {
  const [example] = await examples();
  const cwd = await tempDir();
  const script = join(cwd, 'example.mjs');
  await writeFile(script, (example as string).replaceAll("'maildir-filestore'", JSON.stringify(DIST)));
  const { stdout } = await run(process.execPath, [script], { cwd });
  const claimed = await readdir(join(cwd, 'queue', 'cur'));
  expect(claimed).toHaveLength(1);
  expect(stdout).toBe(`claimed ${claimed[0]}\n`);
  expect(await readdir(join(cwd, 'queue', 'new'))).toEqual([]);
  expect(await readFile(join(cwd, 'queue', 'cur', claimed[0] as string), 'utf8')).toBe('hello, world');
});
