// The command line's --help and docs/cli.md say the same: every command, its
// usage line and its options appear in both, and serve prints what both promise.
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLI, bash, cli, serveChild } from './cli-helpers.js';
import { docBlock, docText } from './doc-blocks.js';
import { tempDir } from './helpers.js';

const PROGRAM = 'maildir-filestore';
const OPTION = /(?<![\w-])(--[a-z][a-z-]*|-[a-z0-9])(?![\w-])/g;

/** The sections `### \`NAME USAGE\`` of docs/cli.md, by command name. */
function documented(): Map<string, { usage: string; text: string }> {
  const sections = docText('docs/cli.md').split(/^### /m).slice(1);
  return new Map(
    sections.map((section) => {
      const heading = /^`([^`]+)`/.exec(section)?.[1] ?? '';
      const [name = '', ...usage] = heading.split(' ');
      return [name, { usage: usage.join(' '), text: section.replace(/```[\s\S]*?```/g, '') }];
    }),
  );
}

function optionsIn(text: string): string[] {
  return [...new Set([...text.matchAll(OPTION)].map((m) => m[1]!))].filter((o) => o !== '--help').sort();
}

async function help(args: string[]): Promise<string> {
  const result = await cli([...args, '--help']);
  expect(result).toMatchObject({ code: 0, stderr: '' });
  return result.stdout.toString();
}

let commands: string[] = [];
const helps = new Map<string, string>();

beforeAll(async () => {
  const global = await help([]);
  commands = [...(global.split('\nCommands:\n')[1] ?? '').matchAll(/^ {2}(\S+) {2}/gm)].map((m) => m[1]!);
  await Promise.all(commands.map(async (name) => helps.set(name, await help([name]))));
});

it('docs/cli.md has a section for each command of --help, in the same order', () => {
  expect(commands.length).toBeGreaterThan(5);
  expect([...documented().keys()]).toEqual(commands);
});

describe('each command', () => {
  it('has the usage line of its --help as its docs heading', () => {
    for (const name of commands) {
      const usage = new RegExp(`^Usage: ${PROGRAM} ${name} (.*)$`, 'm').exec(helps.get(name)!)?.[1] ?? '';
      expect(documented().get(name)?.usage, name).toBe(usage);
    }
  });

  it('documents exactly the options its --help lists', () => {
    for (const name of commands) {
      expect(optionsIn(documented().get(name)!.text), name).toEqual(optionsIn(helps.get(name)!));
    }
  });
});

it('serve prints the line its --help and docs/cli.md promise', async () => {
  const promised = /Prints "([^"]+)"/.exec(helps.get('serve')!.replace(/\n\s*/g, ' '))?.[1];
  expect(promised).toBeDefined();
  expect(docText('docs/cli.md')).toContain(`\`${promised}\``);
  const dir = join(await tempDir(), 'store');
  const server = await serveChild(process.execPath, [CLI, 'serve', dir, '--port', '0', '--durability', 'none']);
  const { stderr } = await server.stop();
  const pattern = promised!
    .replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
    .replace('ROOT', dir.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'))
    .replace('HOST', '127\\.0\\.0\\.1')
    .replace('PORT', '\\d+');
  expect(stderr.split('\n')[0]).toMatch(new RegExp(`^${pattern}$`));
});

it("runs the README's command-line quick start", async () => {
  const cwd = await tempDir();
  const bin = join(cwd, 'bin');
  await mkdir(bin);
  await writeFile(
    join(bin, PROGRAM),
    `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"\n`,
  );
  await chmod(join(bin, PROGRAM), 0o755);
  // `npx` would look the package up in the registry; the built one is on PATH.
  const script = `set -euo pipefail\nnpx() { "$@"; }\n${docBlock('readme-quickstart', 'sh')}`;
  const result = await bash(script, { cwd, env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
  expect(result).toMatchObject({ code: 0, stderr: '' });
  expect(result.stdout.toString()).toBe('greeting\nhello\n');
});
