/**
 * The page `GET /` serves: the counts of the areas, the newest files with
 * download links, and an upload form (drag and drop, several files, a
 * progress bar) over the multipart endpoint. No framework: one static
 * document whose script talks to `/stats`, `/files` and `/files/AREA/NAME`.
 *
 * The page itself holds no data, so it is served without the token; its
 * script sends the token (asked for once, kept in the browser's
 * localStorage) with every request, and downloads through `fetch` when a
 * token is set (a plain link cannot carry the header). The answer forbids
 * framing and allows only its own inline script and style (by hash), so
 * the page works under the origin rules and cannot be turned against them.
 */
import { createHash } from 'node:crypto';

const STYLE = `
body { font: 15px/1.4 system-ui, sans-serif; margin: 2rem auto; max-width: 48rem; padding: 0 1rem; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; } td, th { padding: .2rem .8rem; text-align: right; border-bottom: 1px solid #ddd; }
th:first-child, td:first-child { text-align: left; }
#drop { border: 2px dashed #999; border-radius: .5rem; padding: 1.5rem; text-align: center; }
#drop.over { border-color: #06c; background: #eef5ff; }
progress { width: 100%; margin-top: .5rem; }
#newest li { font-family: ui-monospace, monospace; font-size: .9rem; }
.error { color: #b00; } [hidden] { display: none; }
`;

const SCRIPT = `
const KEY = 'maildir-filestore:token';
const $ = (id) => document.getElementById(id);
let token = localStorage.getItem(KEY) || '';

function authHeaders() {
  return token ? { authorization: 'Bearer ' + token } : {};
}

function askToken(message) {
  $('token-panel').hidden = false;
  $('token-message').textContent = message;
}

function show(message, isError) {
  $('status').textContent = message;
  $('status').className = isError ? 'error' : '';
}

// a name's URL: its bytes percent-encoded, an escaped byte (U+DC80 to U+DCFF, a byte that is not UTF-8) as itself
function encodeName(name) {
  let url = '';
  for (const char of name) {
    const unit = char.charCodeAt(0);
    url += unit >= 0xdc80 && unit <= 0xdcff ? '%' + (unit - 0xdc00).toString(16).toUpperCase() : encodeURIComponent(char);
  }
  return url;
}

function size(bytes) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (bytes >= 1024 && i < units.length - 1) { bytes /= 1024; i++; }
  return (i === 0 ? bytes : bytes.toFixed(1)) + ' ' + units[i];
}

async function refresh() {
  let response;
  try {
    response = await fetch('/stats', { headers: authHeaders(), cache: 'no-store' });
  } catch (err) {
    return show('the server cannot be reached', true);
  }
  if (response.status === 401) return askToken(token ? 'That token was refused; enter the right one.' : 'This server needs its token.');
  if (!response.ok) return show('counting failed: ' + response.status, true);
  $('token-panel').hidden = true;
  const stats = await response.json();
  for (const area of ['tmp', 'new', 'cur']) {
    $('files-' + area).textContent = String(stats.areas[area].files);
    $('bytes-' + area).textContent = size(stats.areas[area].bytes);
  }
  const list = $('newest');
  list.replaceChildren();
  for (const file of stats.newest) {
    const item = document.createElement('li');
    const link = document.createElement('a');
    link.href = '/files/' + file.area + '/' + encodeName(file.name);
    link.download = file.name;
    link.textContent = file.area + '/' + file.name;
    link.addEventListener('click', download);
    item.append(link, ' ' + size(file.size));
    list.append(item);
  }
  if (stats.newest.length === 0) list.textContent = 'none yet';
}

async function download(event) {
  if (!token) return;
  event.preventDefault();
  const link = event.currentTarget;
  const response = await fetch(link.href, { headers: authHeaders() });
  if (!response.ok) return show('download failed: ' + response.status, true);
  const url = URL.createObjectURL(await response.blob());
  const save = document.createElement('a');
  save.href = url;
  save.download = link.download;
  document.body.append(save);
  save.click();
  save.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

function upload(files) {
  if (files.length === 0) return show('choose or drop files first', true);
  const form = new FormData();
  for (const file of files) form.append('file', file, file.name);
  const request = new XMLHttpRequest();
  request.open('POST', '/files');
  for (const [key, value] of Object.entries(authHeaders())) request.setRequestHeader(key, value);
  request.upload.onprogress = (event) => {
    if (event.lengthComputable) $('progress').value = event.loaded / event.total;
  };
  request.onload = () => {
    let body = {};
    try { body = JSON.parse(request.responseText); } catch {}
    if (request.status === 401) {
      askToken('This server needs its token.');
      return show('not uploaded: enter the token and upload again', true);
    }
    if (request.status !== 201) {
      const error = body.error || {};
      return show('upload failed: ' + request.status + ' ' + (error.code || '') + ' ' + (error.message || ''), true);
    }
    $('progress').value = 1;
    show('stored: ' + body.names.join(', '));
    $('files').value = '';
    refresh();
  };
  request.onerror = () => show('upload failed: the connection broke', true);
  $('progress').value = 0;
  show('uploading ' + files.length + ' file' + (files.length === 1 ? '' : 's') + '...');
  request.send(form);
}

$('token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  token = $('token').value.trim();
  localStorage.setItem(KEY, token);
  $('token').value = '';
  refresh();
});
$('upload-form').addEventListener('submit', (event) => {
  event.preventDefault();
  upload([...$('files').files]);
});
const drop = $('drop');
drop.addEventListener('dragover', (event) => { event.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (event) => {
  event.preventDefault();
  drop.classList.remove('over');
  upload([...event.dataTransfer.files]);
});
refresh();
setInterval(refresh, 2000);
`;

const HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>maildir-filestore</title>
<style>${STYLE}</style>
</head>
<body>
<h1>maildir-filestore</h1>
<section id="token-panel" hidden>
<p id="token-message"></p>
<form id="token-form"><input id="token" type="password" autocomplete="off" placeholder="token" aria-label="token"> <button type="submit">Use token</button></form>
</section>
<h2>Areas</h2>
<table id="counts">
<tr><th>area</th><th>files</th><th>bytes</th></tr>
<tr><td>tmp</td><td id="files-tmp">?</td><td id="bytes-tmp">?</td></tr>
<tr><td>new</td><td id="files-new">?</td><td id="bytes-new">?</td></tr>
<tr><td>cur</td><td id="files-cur">?</td><td id="bytes-cur">?</td></tr>
</table>
<h2>Upload</h2>
<form id="upload-form">
<div id="drop">Drop files here, or <input id="files" type="file" multiple aria-label="files"></div>
<button id="upload" type="submit">Upload</button>
<progress id="progress" max="1" value="0"></progress>
</form>
<p id="status" role="status"></p>
<h2>Newest files</h2>
<ul id="newest"></ul>
<script>${SCRIPT}</script>
</body>
</html>
`;

function sha256(text: string): string {
  return `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
}

const HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': [
    "default-src 'none'",
    `script-src ${sha256(SCRIPT)}`,
    `style-src ${sha256(STYLE)}`,
    "connect-src 'self'",
    "img-src 'self'",
    "form-action 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

/** The page's HTML. */
export function pageHtml(): string {
  return HTML;
}

/** The headers the page is served with (its content security policy among them). */
export function pageHeaders(): Record<string, string> {
  return { ...HEADERS };
}
