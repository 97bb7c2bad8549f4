// The README and docs/*.md as specs: a fenced block after `<!-- readme-NAME -->`
// in any of them is an example some spec runs as written.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = new URL('../', import.meta.url);

/** The documentation files, relative to the repository: README.md and docs/*.md. */
export const DOC_FILES: readonly string[] = [
  'README.md',
  ...readdirSync(new URL('docs/', ROOT))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`),
];

/** The text of a documentation file, by its path relative to the repository. */
export function docText(file: string): string {
  return readFileSync(new URL(file, ROOT), 'utf8');
}

/** The absolute path of a documentation file. */
export function docPath(file: string): string {
  return fileURLToPath(new URL(file, ROOT));
}

/** Every `<!-- marker -->` block of the docs: its marker, language, code and file. */
export function docBlocks(): Array<{ marker: string; lang: string; code: string; file: string }> {
  return DOC_FILES.flatMap((file) =>
    [...docText(file).matchAll(/<!-- (readme-[\w-]+) -->\s*```(\w+)\n([\s\S]*?)```/g)].map((m) => ({
      marker: m[1]!,
      lang: m[2]!,
      code: m[3]!,
      file,
    })),
  );
}

/** The code of the one fenced block (of language `lang`) after `<!-- marker -->`, in the README or docs/. */
export function docBlock(marker: string, lang: 'js' | 'sh'): string {
  const found = docBlocks().filter((block) => block.marker === marker);
  if (found.length !== 1) throw new Error(`<!-- ${marker} --> marks ${found.length} blocks in README.md and docs/`);
  const [block] = found;
  if (block!.lang !== lang) throw new Error(`<!-- ${marker} --> in ${block!.file} marks a ${block!.lang} block`);
  return block!.code;
}
