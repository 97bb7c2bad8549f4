import { defineConfig } from 'vitest/config';

/**
 * The specs `npm run test:fast` leaves out: crashes, races and the soak specs
 * (their loops scale with FILESTORE_SOAK). `npm test` runs everything.
 */
const SLOW = ['crash', 'races', 'claim-race', 'model', 'tar-live'].map((name) => `spec/${name}.spec.ts`);

export default defineConfig({
  test: {
    include: ['spec/**/*.spec.ts'],
    // every child process a spec file starts is killed when the file ends
    setupFiles: ['spec/children.ts'],
    exclude: process.env.FILESTORE_FAST === '1' ? SLOW : [],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    coverage: {
      provider: 'v8',
      include: ['lib/**/*.ts'],
      reporter: ['text-summary', 'json-summary'],
      reportsDirectory: 'coverage',
      reportOnFailure: true,
      // Per file, a few points below what `npm run coverage` measured (in process:
      // code that runs only in child processes, most of lib/cli/, counts as
      // uncovered). Raise a figure when a spec covers more; never lower one
      // without saying why in the commit.
      thresholds: {
        'lib/clean.ts': { lines: 84, branches: 83, functions: 63, statements: 82 },
        'lib/consume.ts': { lines: 90, branches: 90, functions: 77, statements: 89 },
        'lib/durability.ts': { lines: 92, branches: 80, functions: 69, statements: 83 },
        'lib/errors.ts': { lines: 97, branches: 97, functions: 97, statements: 97 },
        'lib/listing.ts': { lines: 97, branches: 97, functions: 78, statements: 97 },
        'lib/names.ts': { lines: 97, branches: 92, functions: 97, statements: 97 },
        'lib/place.ts': { lines: 93, branches: 78, functions: 89, statements: 91 },
        'lib/store.ts': { lines: 94, branches: 90, functions: 97, statements: 93 },
        'lib/tar-export.ts': { lines: 95, branches: 95, functions: 97, statements: 95 },
        'lib/tar-header.ts': { lines: 97, branches: 89, functions: 97, statements: 92 },
        'lib/tar-reader.ts': { lines: 90, branches: 74, functions: 73, statements: 87 },
        'lib/tar.ts': { lines: 97, branches: 90, functions: 97, statements: 95 },
        'lib/write-out.ts': { lines: 44, branches: 47, functions: 37, statements: 42 },
        'lib/writer.ts': { lines: 93, branches: 90, functions: 97, statements: 92 },
        'lib/cli/output.ts': { lines: 30, statements: 24 },
        'lib/cli/progress.ts': { lines: 97, branches: 92, functions: 97, statements: 97 },
        'lib/cli/tar-counter.ts': { lines: 91, branches: 83, functions: 97, statements: 88 },
        'lib/server/body.ts': { lines: 97, branches: 90, functions: 84, statements: 93 },
        'lib/server/files-routes.ts': { lines: 97, branches: 91, functions: 97, statements: 95 },
        'lib/server/http-error.ts': { lines: 89, branches: 69, functions: 97, statements: 90 },
        'lib/server/router.ts': { lines: 97, branches: 97, functions: 97, statements: 97 },
        'lib/server/server.ts': { lines: 92, branches: 85, functions: 97, statements: 90 },
        'lib/server/tar-routes.ts': { lines: 97, branches: 97, functions: 97, statements: 97 },
      },
    },
  },
});
