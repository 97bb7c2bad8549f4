// Symlinked areas and missing write permission. prepare() refuses an area that
// is a symlink (or not a directory) with ERR_UNSAFE_AREA; it checks once, the
// commit path does not (see the README: an area swapped later is followed).
// A store the caller may not write to fails every change with EACCES and is
// left exactly as it was; as root, that part runs in a child as nobody.
import { chmod, lstat, mkdir, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { FileStore } from '../lib/index.js';
import { tempDir, tempStore } from './helpers.js';
import { readableCopy } from './readable-copy.js';
import { IS_ROOT, probe, reported, startWorker, tree } from './reliability.js';

type Area = 'tmp' | 'new' | 'cur';

const swaps: Array<[kind: string, make: (areaPath: string, outside: string) => Promise<void>]> = [
  ['a symlink to a directory outside the store', (p, outside) => symlink(outside, p)],
  ['a relative symlink out of the store', (p) => symlink('../../outside', p)],
  ['a dangling symlink', (p) => symlink('/nonexistent/filestore-area', p)],
  ['a symlink to another area', (p) => symlink(p.endsWith('new') ? 'cur' : 'new', p)],
  ['a regular file', (p) => writeFile(p, 'not a directory')],
];

const cases = (['tmp', 'new', 'cur'] as Area[]).flatMap((area) => swaps.map(([kind, make]) => ({ area, kind, make })));

describe('an area that is not a plain directory', () => {
  it.each(cases)(
    '$area as $kind: prepare rejects with ERR_UNSAFE_AREA and writes nothing outside',
    async ({ area, make }) => {
      const base = await tempDir();
      const outside = join(base, 'outside');
      await mkdir(outside);
      const store = new FileStore(join(base, 'store'));
      await store.prepare();
      await rm(join(store.root, area), { recursive: true });
      await make(join(store.root, area), outside);

      await expect(store.prepare()).rejects.toMatchObject({ code: 'ERR_UNSAFE_AREA', path: join(store.root, area) });
      expect(await readdir(outside)).toEqual([]);
      expect((await lstat(join(store.root, area))).isDirectory()).toBe(false);
    },
  );

  it('an area swapped for a symlink after prepare is followed by writes (documented), and the next prepare refuses it', async () => {
    const base = await tempDir();
    const outside = join(base, 'outside');
    await mkdir(outside);
    const store = new FileStore(join(base, 'store'), { durability: 'none' });
    await store.prepare();
    await rm(join(store.root, 'new'), { recursive: true });
    await symlink(outside, join(store.root, 'new'));

    await pipeline(Readable.from(['data']), store.create('followed'));
    expect(await readdir(outside)).toEqual(['followed']);
    await expect(store.prepare()).rejects.toMatchObject({ code: 'ERR_UNSAFE_AREA' });
  });
});

// ---- no write permission -----------------------------------------------------

const nobody = IS_ROOT ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] : [];
const canDrop = IS_ROOT ? probe([...nobody, 'true']) : { ok: true, reason: '' };

/** Everything under `dir` with contents and modification times, to prove nothing changed. */
async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const rel of await tree(dir)) {
    const s = await stat(join(dir, rel));
    out.push(
      `${rel} ${s.mode.toString(8)} ${s.mtimeMs} ${rel.endsWith('/') ? '' : await readFile(join(dir, rel), 'utf8')}`,
    );
  }
  return out;
}

describe.skipIf(!canDrop.ok)(
  `a store without write permission${canDrop.ok ? '' : ` (skipped: ${canDrop.reason})`}`,
  () => {
    it(`fails every change with EACCES and changes nothing (${IS_ROOT ? 'run as nobody via setpriv' : 'run as this non-root user'})`, async () => {
      const store = await tempStore({ durability: 'none' });
      const base = join(store.root, '..');
      for (const [name, area] of [
        ['n1', 'new'],
        ['n2', 'new'],
        ['c1', 'cur'],
      ] as const) {
        await pipeline(Readable.from([name]), store.create(name, { commit: area === 'new' }));
        if (area === 'cur') await store.move(name, 'tmp', 'cur');
      }
      await writeFile(join(store.root, 'tmp', 't1'), 't1');
      // a second store with cur/ missing, and a parent the child may not write to
      const partial = new FileStore(join(base, 'partial'));
      await partial.prepare();
      await rm(join(partial.root, 'cur'), { recursive: true });
      const readOnly = [
        base,
        store.root,
        partial.root,
        ...['tmp', 'new', 'cur'].map((a) => join(store.root, a)),
        join(partial.root, 'tmp'),
        join(partial.root, 'new'),
      ];
      for (const dir of readOnly) await chmod(dir, 0o555);
      const before = await snapshot(base);

      const worker = startWorker(
        'ops',
        {
          root: store.root,
          ops: [
            ['create named', 'create', 'x'],
            ['create generated', 'create'],
            ['create commit false', 'create', 'y', { commit: false }],
            ['create overwrite', 'create', 'n1', { overwrite: true }],
            ['move', 'move', 'n1', 'new', 'cur'],
            ['move overwrite', 'move', 'n1', 'new', 'cur', { overwrite: true }],
            ['claim', 'claim', 'n2'],
            ['copy', 'copy', 'n1', 'new', 'tmp'],
            ['remove new', 'remove', 'n1', 'new'],
            ['remove tmp', 'remove', 't1', 'tmp'],
            ['list', 'list', 'new'],
            ['prepare complete', 'prepare'],
          ],
        },
        nobody,
        readableCopy().worker,
      );
      const exit = await worker.exit;
      expect(exit.code, exit.stderr).toBe(0);
      const partialWorker = startWorker(
        'ops',
        { root: partial.root, ops: [['prepare partial', 'prepare']] },
        nobody,
        readableCopy().worker,
      );
      const newWorker = startWorker(
        'ops',
        { root: join(base, 'fresh'), ops: [['prepare fresh', 'prepare']] },
        nobody,
        readableCopy().worker,
      );
      await Promise.all([partialWorker.exit, newWorker.exit]);

      const results = Object.fromEntries(
        [...worker.lines, ...partialWorker.lines, ...newWorker.lines].map((l) => [
          l.slice(0, l.lastIndexOf(':')),
          l.slice(l.lastIndexOf(':') + 1),
        ]),
      );
      expect(results).toEqual({
        'create named': 'EACCES',
        'create generated': 'EACCES',
        'create commit false': 'EACCES',
        'create overwrite': 'EACCES',
        move: 'EACCES',
        'move overwrite': 'EACCES',
        claim: 'EACCES',
        copy: 'EACCES',
        'remove new': 'EACCES',
        'remove tmp': 'EACCES',
        list: 'ok',
        'prepare complete': 'ok',
        'prepare partial': 'EACCES',
        'prepare fresh': 'EACCES',
      });
      expect(reported(worker, 'claim:')).toEqual(['EACCES']);
      expect(await snapshot(base)).toEqual(before);
      for (const dir of readOnly) await chmod(dir, 0o755);
    });
  },
);
