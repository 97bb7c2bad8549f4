// The setup file spec/children.ts kills what a spec file leaves running; here
// its finder sees a direct child and an orphaned grandchild.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { expect, it } from 'vitest';
import { leftOver } from './children.js';

it('finds a running child and an orphaned grandchild of this spec file', async () => {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  // bash starts sleep in the background and exits: sleep is reparented, away from this process
  const parent = spawn('bash', ['-c', 'sleep 30 >/dev/null & echo $!'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const [[output]] = (await Promise.all([once(parent.stdout, 'data'), once(parent, 'exit')])) as [[Buffer], unknown];
  const grandchild = Number(output.toString().trim());
  try {
    expect(leftOver()).toEqual(expect.arrayContaining([child.pid, grandchild]));
  } finally {
    child.kill('SIGKILL');
    process.kill(grandchild, 'SIGKILL');
  }
});
