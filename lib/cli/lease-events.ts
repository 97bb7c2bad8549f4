/** The stderr lines of `consume --lease` and `requeue` for what the lease machinery did. */
import type { LeaseEvent } from '../index.js';
import { PROGRAM, escapeName } from './output.js';

/** One line (without the newline) telling an operator what happened to a file. */
export function leaseEventLine(event: LeaseEvent): string {
  const name = escapeName(event.name);
  switch (event.type) {
    case 'collision':
      return `${PROGRAM}: collision: ${name} waits in new/: cur/ holds another file of that name`;
    case 'repaired':
      return `${PROGRAM}: repaired: ${name} was in new/ and cur/ (a process died moving it); now in new/`;
    case 'requeued':
      return `${PROGRAM}: requeued: ${name} back to new/ after delivery ${event.deliveries}`;
    case 'parked':
      return `${PROGRAM}: parked: ${name} stays in cur/ after ${event.deliveries} deliveries (requeue it by name to retry)`;
    case 'lease-lost':
      return `${PROGRAM}: lease lost: ${name} was requeued while its CMD ran`;
  }
}
