import { FileStore } from '../../index.js';
import { UsageError, defineCommand } from '../command.js';
import { leaseEventLine } from '../lease-events.js';
import { printNames } from '../output.js';
import { dir, duration, integer, json, optionalName } from '../specs.js';

/** `requeue DIR --older-than AGE | NAME`: expired leases (or one file by hand) from cur/ back to new/. */
export const requeue = defineCommand({
  name: 'requeue',
  usage: 'DIR (--older-than AGE [--max-deliveries N] | NAME) [--json]',
  summary: 'move expired leases (or a parked file) from cur/ back to new/, print their names',
  help: `Moves the files in DIR/cur/ whose lease is older than --older-than (last
claimed or renewed that long ago: their leased consumer died) back to new/,
where any consumer takes them again, and prints their names, one per line,
escaped as ls prints them. Safe to run while consumers work: a file whose
owner renews it stays, and each file moves once however many requeue at
once. Also repairs files left in both new/ and cur/ for that long. Parked
files (delivered too often) stay; with NAME, that one file is moved back by
hand, parked or not, its delivery count starting again.

Every consumer of the store must lease (consume --lease): a file a plain
consumer took for good looks like an expired lease too.

Options:
  --older-than AGE     minimum age of the lease: a number with a unit, ms,
                       s, m, h or d (90s, 15m, 36h, 2d), or plain milliseconds
  --max-deliveries N   park instead an expired file already delivered N times
                       (a line on stderr names each file parked, repaired or
                       left in cur/ because new/ holds another of its name)
  --json               print one JSON object per requeued file: {"name":NAME,"area":"new"}

Exit codes: 0 done (also when nothing was due), 1 failed (NAME not in cur/:
ENOENT; new/ holds NAME too: EEXIST), 2 usage error.`,
  args: [dir, optionalName],
  options: { 'older-than': duration(), 'max-deliveries': integer(Number.POSITIVE_INFINITY, 1), json },
  async run({ args: [root, name], options }, io) {
    const olderThan = options['older-than'];
    if ((name === undefined) === (olderThan === undefined)) {
      throw new UsageError('requeue takes either --older-than AGE or a NAME');
    }
    const store = new FileStore(root);
    const requeued =
      name === undefined
        ? await store.requeue({
            olderThan,
            maxDeliveries: options['max-deliveries'],
            onEvent: (event) => {
              if (event.type !== 'requeued') io.stderr.write(`${leaseEventLine(event)}\n`);
            },
          })
        : await store.requeue({ names: [name] });
    await printNames(io.stdout, requeued, 'new', options.json);
    return 0;
  },
});
