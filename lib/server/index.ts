/**
 * The HTTP upload server, its own entry point (`maildir-filestore/server`), so
 * that the library's main entry loads no HTTP code.
 */
export { assertToken, createServer } from './server.js';
export type { ServerOptions } from './server.js';
export { accessLine, errorLine, escapeControl, eventLine } from './access-log.js';
export type { LogFormat, RequestLogEntry } from './access-log.js';
export { defaultMaxConnections, descriptorLimit } from './connection-cap.js';
