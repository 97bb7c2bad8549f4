// The power-loss workload's file bodies, shared by the workload (a plain
// child script) and the explorer: FSCK, the length, the SHA-256 of a payload
// derived from `seed`, as spec/reliability.ts's verifiesSelf checks them.
import { createHash } from 'node:crypto';

/** A self-checking body of `bytes` payload bytes, the same for the same seed. */
export function selfChecking(seed, bytes) {
  const payload = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) payload[i] = (seed * 31 + i * 7) & 0xff;
  const header = Buffer.alloc(44);
  header.write('FSCK', 0, 'latin1');
  header.writeBigUInt64BE(BigInt(bytes), 4);
  createHash('sha256').update(payload).digest().copy(header, 12);
  return Buffer.concat([header, payload]);
}
