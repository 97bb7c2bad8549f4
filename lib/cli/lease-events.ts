/** The stderr lines of `consume --lease` and `requeue` for what the lease machinery did. */
import type { LeaseEvent } from '../index.js';
import { PROGRAM, escapeName } from './output.js';

/** One line (without the newline) telling an operator what happened to a file. */
export function leaseEventLine(event: LeaseEvent): string {
  const name = escapeName(event.name);
  const what: Record<LeaseEvent['type'], () => string> = {
    collision: () => `collision: ${name} waits in new/: cur/ holds another file of that name`,
    repaired: () => `repaired: ${name} was in new/ and cur/ (a process died moving it); now in new/`,
    requeued: () => `requeued: ${name} back to new/ after delivery ${deliveriesOf(event)}`,
    parked: () => `parked: ${name} stays in cur/ after ${deliveriesOf(event)} deliveries (requeue it by name to retry)`,
    'lease-lost': () => `lease lost: ${name} was requeued while its CMD ran`,
    unsafe: () => `unsafe entry: ${name} in new/ is not a regular file; left there`,
  };
  return `${PROGRAM}: ${what[event.type]()}`;
}

function deliveriesOf(event: LeaseEvent): number {
  return 'deliveries' in event ? event.deliveries : 0;
}
