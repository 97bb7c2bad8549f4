export { FileStore } from './store.js';
export type { CreateOptions, Entry, FileStoreOptions, TransferOptions } from './store.js';
export { FileWriter } from './writer.js';
export type { ExportTarOptions, ImportTarError, ImportTarOptions } from './tar.js';
export { FileStoreError } from './errors.js';
export type { FileStoreErrorCode } from './errors.js';
export type { Area } from './names.js';
export type { Durability } from './durability.js';
