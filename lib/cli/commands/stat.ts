import { countFiles, type AreaStats } from '../area-stats.js';
import { FileStore, type Area } from '../../index.js';
import { defineCommand } from '../command.js';
import { writeOut } from '../../write-out.js';
import { jsonLine } from '../output.js';
import { dir, json } from '../specs.js';

const AREAS: readonly Area[] = ['tmp', 'new', 'cur'];

/** `stat DIR`: files and bytes per area. */
export const stat = defineCommand({
  name: 'stat',
  usage: 'DIR [--json]',
  summary: 'count the files and bytes in tmp/, new/ and cur/ (queue depth)',
  help: `Counts the regular files of each area and their bytes, streaming each
directory (memory does not grow with the area), and prints one line per
area: the area, its files, its bytes. The counts are a snapshot taken while
other processes work: a file moved during the count may be counted in no
area or in two.

Options:
  --json   print {"tmp":{"files":N,"bytes":N},"new":{...},"cur":{...}}`,
  args: [dir],
  options: { json },
  async run({ args: [root], options }, io) {
    const store = new FileStore(root);
    const counts: Partial<Record<Area, AreaStats>> = {};
    for (const area of AREAS) {
      io.signal.throwIfAborted();
      counts[area] = await countFiles(store.list(area));
    }
    if (options.json) {
      await writeOut(io.stdout, jsonLine(counts));
      return 0;
    }
    const rows = AREAS.map((area) => [area, String(counts[area]?.files ?? 0), String(counts[area]?.bytes ?? 0)]);
    const widths = [4, 5, 5].map((min, i) => Math.max(min, ...rows.map((row) => row[i]?.length ?? 0)));
    const format = (row: string[]): string =>
      row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ');
    await writeOut(io.stdout, `${[['area', 'files', 'bytes'], ...rows].map(format).join('\n')}\n`);
    return 0;
  },
});
