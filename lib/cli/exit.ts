/** The exit codes every command shares (the help and docs/cli.md list them). */

/** Done. */
export const EXIT_DONE = 0;
/** Failed: the error line says why. */
export const EXIT_FAILED = 1;
/** A wrong command line: unknown command or option, wrong arguments, an invalid name or area. */
export const EXIT_USAGE = 2;
/** `claim` did not get the file: another caller won it, or it was not in new/. */
export const EXIT_LOST = 3;
/** Interrupted by a signal: 128 + its number (130 for SIGINT, 143 for SIGTERM). */
export const EXIT_SIGNAL_BASE = 128;
