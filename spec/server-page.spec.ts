// The page at GET / in a real headless browser: Debian's chromium driven by playwright-core (no
// browser download). Two files uploaded through the form, seen counted, one downloaded and compared;
// with the token entered once on the page; drag and drop; the progress bar.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { namesIn, tempDir } from './helpers.js';
import { start } from './server-helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
// in CI the browser is installed by .ci/run: there a missing one is a failure, not a skip
const present = existsSync(CHROMIUM) || process.env.CI === 'true';

describe.skipIf(!present)('the page in headless chromium', () => {
  let context: BrowserContext;

  beforeAll(async () => {
    context = await chromium.launchPersistentContext(await tempDir(), {
      executablePath: CHROMIUM,
      args: ARGS,
      headless: true,
      acceptDownloads: true,
    });
  });

  afterAll(async () => {
    await context?.close();
  });

  it('asks for the token once, uploads two files with progress, counts them, downloads one byte for byte', async () => {
    const { store, base } = await start({ token: 'sesame', statsInterval: 100 });
    const dir = await tempDir();
    const first = randomBytes(300_000);
    await writeFile(join(dir, 'first.bin'), first);
    await writeFile(join(dir, 'second.txt'), 'second file\n');
    const page = await context.newPage();
    await page.goto(`${base}/`);
    await page.locator('#token-panel').waitFor({ state: 'visible' });
    await page.fill('#token', 'sesame');
    await page.click('#token-form button');
    await page.locator('#token-panel').waitFor({ state: 'hidden' });
    await expect.poll(() => page.textContent('#files-new'), { timeout: 15_000 }).toBe('0');

    await page.setInputFiles('#files', [join(dir, 'first.bin'), join(dir, 'second.txt')]);
    await page.click('#upload');
    await expect.poll(() => page.textContent('#status'), { timeout: 15_000 }).toBe('stored: first.bin, second.txt');
    // (page code as a string: the specs compile without the DOM's types)
    expect(await page.evaluate("document.getElementById('progress').value")).toBe(1);
    await expect.poll(() => page.textContent('#files-new'), { timeout: 15_000 }).toBe('2');
    expect(await namesIn(store, 'new')).toEqual(['first.bin', 'second.txt']);
    expect(await namesIn(store, 'tmp')).toEqual([]);

    const link = page.locator('#newest a', { hasText: 'new/first.bin' });
    await link.waitFor();
    const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
    expect(download.suggestedFilename()).toBe('first.bin');
    const saved = await download.path();
    expect((await readFile(saved)).equals(first)).toBe(true);

    // the token is kept: a reload shows no token form and the counts at once
    await page.reload();
    await expect.poll(() => page.textContent('#files-new'), { timeout: 15_000 }).toBe('2');
    expect(await page.locator('#token-panel').isHidden()).toBe(true);
    await page.close();
  });

  it('takes dropped files, and shows the error of a refused upload', async () => {
    const { store, base } = await start({ statsInterval: 100 });
    await store.create('taken.txt').end('already here');
    const page = await context.newPage();
    await page.goto(`${base}/`);
    await expect.poll(() => page.textContent('#files-new'), { timeout: 15_000 }).toBe('1');
    const drop = async (names: string[]): Promise<void> => {
      const transfer = await page.evaluateHandle(
        `(() => { const data = new DataTransfer(); for (const name of ${JSON.stringify(names)}) data.items.add(new File(['dropped ' + name], name)); return data; })()`,
      );
      await page.dispatchEvent('#drop', 'drop', { dataTransfer: transfer });
    };
    await drop(['dropped.txt']);
    await expect.poll(() => page.textContent('#status'), { timeout: 15_000 }).toBe('stored: dropped.txt');
    expect(await readFile(join(store.root, 'new', 'dropped.txt'), 'utf8')).toBe('dropped dropped.txt');
    await drop(['taken.txt']);
    await expect.poll(() => page.textContent('#status'), { timeout: 15_000 }).toMatch(/^upload failed: 409 EEXIST/);
    expect(await readFile(join(store.root, 'new', 'taken.txt'), 'utf8')).toBe('already here');
    await expect.poll(() => page.textContent('#files-new'), { timeout: 15_000 }).toBe('2');
    await page.close();
  });

  it('links a file whose name is not UTF-8 by its bytes (%E9), and downloads that file, not its U+FFFD look-alike', async () => {
    const { store, base } = await start({ statsInterval: 100 });
    await writeFile(Buffer.from(`${join(store.root, 'new')}/latin1-\xe9`, 'latin1'), 'the latin1 one');
    await writeFile(join(store.root, 'new', 'latin1-\uFFFD'), 'the look-alike');
    const page = await context.newPage();
    await page.goto(`${base}/`);
    await expect.poll(() => page.textContent('#files-new'), { timeout: 15_000 }).toBe('2');
    const hrefs = await page.evaluate(
      "Array.from(document.querySelectorAll('#newest a')).map((link) => link.getAttribute('href'))",
    );
    expect((hrefs as string[]).sort()).toEqual(['/files/new/latin1-%E9', '/files/new/latin1-%EF%BF%BD']);
    const link = page.locator('#newest a[href="/files/new/latin1-%E9"]');
    const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
    expect(await readFile(await download.path(), 'utf8')).toBe('the latin1 one');
    await page.close();
  });
});

it.skipIf(present)(
  'the page in headless chromium (skipped: /usr/bin/chromium is not installed; .ci/run installs it)',
  () => {},
);
