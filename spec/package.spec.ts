// What `npm publish` would ship: the built entry points, their types, a
// LICENSE matching package.json, the CHANGELOG, and source maps that resolve.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
let packed: string[] = [];

beforeAll(async () => {
  const { stdout } = await promisify(execFile)('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: ROOT,
  });
  packed = JSON.parse(stdout)[0].files.map((file: { path: string }) => file.path);
});

it('ships the entry points of the exports map, the bin, LICENSE, CHANGELOG and README', () => {
  const targets = Object.values(pkg.exports as Record<string, string | Record<string, string>>).flatMap((target) =>
    typeof target === 'string' ? [target] : Object.values(target),
  );
  for (const file of [...targets, ...Object.values(pkg.bin as Record<string, string>)]) {
    expect(packed, file).toContain(posix.normalize(file));
  }
  expect(packed).toEqual(expect.arrayContaining(['LICENSE', 'CHANGELOG.md', 'README.md']));
  expect(packed.filter((file) => file.startsWith('spec/') || file.startsWith('bench/'))).toEqual([]);
});

it('has a LICENSE of the license package.json names', () => {
  expect(pkg.license).toBe('MIT');
  expect(readFileSync(join(ROOT, 'LICENSE'), 'utf8')).toMatch(/^MIT License\n/);
});

it('ships source maps whose sources resolve inside the package', () => {
  const maps = packed.filter((file) => file.endsWith('.map'));
  expect(maps.length).toBeGreaterThan(10);
  for (const map of maps) {
    const { sources, sourcesContent } = JSON.parse(readFileSync(join(ROOT, map), 'utf8'));
    for (const source of sources as string[]) {
      const resolved = relative(ROOT, join(ROOT, dirname(map), source));
      expect(packed, `${map} -> ${source}`).toContain(resolved);
    }
    if (map.endsWith('.js.map')) expect(sourcesContent, map).toHaveLength(sources.length);
  }
});

it("keeps FileWriter's internal constructor out of the published types", () => {
  const types = readFileSync(join(ROOT, 'dist', 'writer.d.ts'), 'utf8');
  expect(types).toContain('class FileWriter');
  expect(types).not.toMatch(/constructor\(/);
  expect(existsSync(join(ROOT, 'dist', 'index.d.ts'))).toBe(true);
});
