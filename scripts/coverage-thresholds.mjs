// Prints the `thresholds` block of vitest.config.ts from the last coverage run
// (`npm run coverage` writes coverage/coverage-summary.json): per file, each
// figure 3 points below the measured one; figures under 5% get no threshold.
import { readFileSync } from 'node:fs';

const MARGIN = 3;
const summary = JSON.parse(readFileSync(new URL('../coverage/coverage-summary.json', import.meta.url), 'utf8'));
const root = new URL('../', import.meta.url).pathname;
for (const [file, figures] of Object.entries(summary)) {
  if (file === 'total') continue;
  const limits = ['lines', 'branches', 'functions', 'statements']
    .filter((kind) => figures[kind].total > 0 && figures[kind].pct - MARGIN >= 5)
    .map((kind) => `${kind}: ${Math.floor(figures[kind].pct - MARGIN)}`);
  if (limits.length > 0) console.log(`        '${file.replace(root, '')}': { ${limits.join(', ')} },`);
}
