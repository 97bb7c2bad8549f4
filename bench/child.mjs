// Runs one contender in this fresh process: `node child.mjs <module-url> <export> <json-args>`.
// The export's resolved value goes back to the runner over IPC, then the process exits.
const [moduleUrl, name, json] = process.argv.slice(2);

function reply(message) {
  process.send(message, () => process.exit(0));
}

try {
  const mod = await import(moduleUrl);
  if (typeof mod[name] !== 'function') throw new Error(`${moduleUrl} exports no contender ${name}`);
  reply({ type: 'result', result: await mod[name](JSON.parse(json)) });
} catch (err) {
  reply({ type: 'error', message: err?.stack ?? String(err), code: err?.code });
}
