/** A self-checking body of `bytes` payload bytes, the same for the same seed. */
export function selfChecking(seed: number, bytes: number): Buffer;
