// A model-based property test: fast-check runs random sequences of
// create (commit, commit: false, abort by destroy), move, claim, copy and
// remove against a real store and against a map of the three areas. Each
// command computes the outcome the model predicts (success, ENOENT, EEXIST,
// claim's false), checks the store gives exactly that, and after every step
// the three directories must hold exactly the model's files and contents.
import { once } from 'node:events';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import fc from 'fast-check';
import { afterAll, expect, it } from 'vitest';
import type { Area, FileStore } from '../lib/index.js';
import { tempStore } from './helpers.js';
import { rounds, TIMEOUT } from './reliability.js';

type Model = Record<Area, Map<string, string>>;
type Outcome = 'ok' | boolean | string;

const AREAS: Area[] = ['tmp', 'new', 'cur'];
const stats = { runs: 0, steps: 0 };

afterAll(() =>
  console.log(`model: ${stats.runs} random sequences, ${stats.steps} steps, directories and model agreed after each`),
);

async function outcomeOf(run: () => Promise<unknown>): Promise<Outcome> {
  try {
    const value = await run();
    return typeof value === 'boolean' ? value : 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

async function expectAgreement(model: Model, store: FileStore): Promise<void> {
  for (const area of AREAS) {
    const names = (await readdir(join(store.root, area))).sort();
    expect(names, `names in ${area}/`).toEqual([...model[area].keys()].sort());
    for (const name of names)
      expect(await readFile(join(store.root, area, name), 'utf8'), `${area}/${name}`).toBe(model[area].get(name));
  }
  stats.steps++;
}

abstract class Step implements fc.AsyncCommand<Model, FileStore> {
  check(): boolean {
    return true;
  }
  /** Applies the step to the model and returns the outcome the store must give. */
  abstract predict(model: Model): Outcome;
  abstract perform(store: FileStore): Promise<Outcome>;
  abstract toString(): string;
  async run(model: Model, store: FileStore): Promise<void> {
    const actual = await this.perform(store);
    const expected = this.predict(model);
    expect(actual, this.toString()).toEqual(expected);
    await expectAgreement(model, store);
  }
}

/** Commits a file to new/ (or tmp/ with commit: false); `name` undefined generates one. */
class Create extends Step {
  #generated: string | null = null;
  constructor(
    readonly name: string | undefined,
    readonly commit: boolean,
    readonly overwrite: boolean,
    readonly content: string,
  ) {
    super();
  }
  predict(model: Model): Outcome {
    const area = this.commit ? model.new : model.tmp;
    const name = this.name ?? (this.#generated as string);
    if (area.has(name) && !this.overwrite && this.name !== undefined) return 'EEXIST';
    area.set(name, this.content);
    return 'ok';
  }
  perform(store: FileStore): Promise<Outcome> {
    return outcomeOf(async () => {
      const writer = store.create(this.name, { commit: this.commit, overwrite: this.overwrite });
      this.#generated = writer.name;
      writer.write(this.content.slice(0, 2));
      writer.end(this.content.slice(2));
      await finished(writer);
    });
  }
  toString(): string {
    return `create(${JSON.stringify(this.name)}, { commit: ${this.commit}, overwrite: ${this.overwrite} })`;
  }
}

/** Writes part of a file, then destroys the writer: nothing may change anywhere. */
class Abort extends Step {
  constructor(
    readonly name: string | undefined,
    readonly commit: boolean,
  ) {
    super();
  }
  predict(): Outcome {
    return 'ok';
  }
  async perform(store: FileStore): Promise<Outcome> {
    const writer = store.create(this.name, { commit: this.commit });
    writer.write('partial');
    const closed = once(writer, 'close');
    writer.destroy();
    await closed;
    return 'ok';
  }
  toString(): string {
    return `abort(${JSON.stringify(this.name)}, { commit: ${this.commit} })`;
  }
}

class Move extends Step {
  constructor(
    readonly name: string,
    readonly from: Area,
    readonly to: Area,
    readonly overwrite: boolean,
  ) {
    super();
  }
  predict(model: Model): Outcome {
    const content = model[this.from].get(this.name);
    if (content === undefined) return 'ENOENT';
    if (this.from === this.to) return this.overwrite ? 'ok' : 'EEXIST';
    if (model[this.to].has(this.name) && !this.overwrite) return 'EEXIST';
    model[this.from].delete(this.name);
    model[this.to].set(this.name, content);
    return 'ok';
  }
  perform(store: FileStore): Promise<Outcome> {
    return outcomeOf(() => store.move(this.name, this.from, this.to, { overwrite: this.overwrite }));
  }
  toString(): string {
    return `move(${this.name}, ${this.from}, ${this.to}, { overwrite: ${this.overwrite} })`;
  }
}

class Claim extends Step {
  constructor(readonly name: string) {
    super();
  }
  predict(model: Model): Outcome {
    const content = model.new.get(this.name);
    if (content === undefined) return false;
    if (model.cur.has(this.name)) return 'EEXIST';
    model.new.delete(this.name);
    model.cur.set(this.name, content);
    return true;
  }
  perform(store: FileStore): Promise<Outcome> {
    return outcomeOf(() => store.claim(this.name));
  }
  toString(): string {
    return `claim(${this.name})`;
  }
}

class Copy extends Step {
  constructor(
    readonly name: string,
    readonly from: Area,
    readonly to: Area,
    readonly overwrite: boolean,
  ) {
    super();
  }
  predict(model: Model): Outcome {
    const content = model[this.from].get(this.name);
    if (content === undefined) return 'ENOENT';
    if (model[this.to].has(this.name) && !this.overwrite) return 'EEXIST';
    model[this.to].set(this.name, content);
    return 'ok';
  }
  perform(store: FileStore): Promise<Outcome> {
    return outcomeOf(() => store.copy(this.name, this.from, this.to, { overwrite: this.overwrite }));
  }
  toString(): string {
    return `copy(${this.name}, ${this.from}, ${this.to}, { overwrite: ${this.overwrite} })`;
  }
}

class Remove extends Step {
  constructor(
    readonly name: string,
    readonly area: Area,
  ) {
    super();
  }
  predict(model: Model): Outcome {
    return model[this.area].delete(this.name) ? 'ok' : 'ENOENT';
  }
  perform(store: FileStore): Promise<Outcome> {
    return outcomeOf(() => store.remove(this.name, this.area));
  }
  toString(): string {
    return `remove(${this.name}, ${this.area})`;
  }
}

// three names, so collisions (EEXIST) and misses (ENOENT) are frequent
const name = fc.constantFrom('a', 'b', 'c');
const area = fc.constantFrom<Area>('tmp', 'new', 'cur');
const steps = [
  fc
    .tuple(fc.option(name, { nil: undefined, freq: 4 }), fc.boolean(), fc.boolean(), fc.string({ maxLength: 12 }))
    .map(([n, commit, overwrite, content]) => new Create(n, commit, overwrite, content)),
  fc.tuple(fc.option(name, { nil: undefined }), fc.boolean()).map(([n, commit]) => new Abort(n, commit)),
  fc.tuple(name, area, area, fc.boolean()).map(([n, from, to, overwrite]) => new Move(n, from, to, overwrite)),
  name.map((n) => new Claim(n)),
  fc.tuple(name, area, area, fc.boolean()).map(([n, from, to, overwrite]) => new Copy(n, from, to, overwrite)),
  fc.tuple(name, area).map(([n, a]) => new Remove(n, a)),
];

it(
  'create/commit/abort/move/claim/copy/remove agree with an in-memory model after every step',
  async () => {
    await fc.assert(
      fc.asyncProperty(fc.commands(steps, { maxCommands: 40, size: 'max' }), async (commands) => {
        const store = await tempStore({ durability: 'none' });
        stats.runs++;
        await fc.asyncModelRun(
          () => ({ model: { tmp: new Map(), new: new Map(), cur: new Map() }, real: store }),
          commands,
        );
      }),
      { numRuns: rounds(80, 2000) },
    );
  },
  TIMEOUT,
);

// The first counterexample the model found: with a generated name and
// commit: false the tmp file is the final file, and autoDestroy unlinked it.
it('create() without a name and with commit: false keeps its file in tmp/ after finish', async () => {
  const store = await tempStore({ durability: 'none' });
  const writer = store.create(undefined, { commit: false });
  const closed = once(writer, 'close');
  writer.end('kept');
  await finished(writer);
  await closed;
  expect(await readdir(join(store.root, 'tmp'))).toEqual([writer.name]);
  expect(writer.path).toBe(join(store.root, 'tmp', writer.name));
});
