import { describe, expect, it } from 'vitest';
import { Router } from '../lib/server/router.js';

const noop = async (): Promise<void> => {};
const router = new Router([
  { method: 'GET', path: '/files/:area/:name', handler: noop },
  { method: 'DELETE', path: '/files/:area/:name', handler: noop },
  { method: 'GET', path: '/export/:area.tar', handler: noop },
]);

describe('Router', () => {
  it('matches literal segments and decodes parameters', () => {
    const { route, params } = router.match('GET', '/files/new/a%20b%2Fc');
    expect(route.path).toBe('/files/:area/:name');
    expect(params).toEqual({ area: 'new', name: 'a b/c' });
  });

  it('matches a parameter with a literal suffix, and only with it', () => {
    expect(router.match('GET', '/export/cur.tar').params).toEqual({ area: 'cur' });
    expect(() => router.match('GET', '/export/cur')).toThrow(
      expect.objectContaining({ status: 404, code: 'ERR_NOT_FOUND' }),
    );
  });

  it('answers 405 with the allowed methods when only the method is wrong, 404 when nothing matches', () => {
    expect(() => router.match('PUT', '/files/new/x')).toThrow(
      expect.objectContaining({ status: 405, allow: 'GET, DELETE, HEAD' }),
    );
    expect(() => router.match('GET', '/files/new')).toThrow(expect.objectContaining({ status: 404 }));
    expect(() => router.match('GET', '/files/new/x/y')).toThrow(expect.objectContaining({ status: 404 }));
  });

  it('rejects malformed percent-encoding with 400', () => {
    expect(() => router.match('GET', '/files/new/%zz')).toThrow(
      expect.objectContaining({ status: 400, code: 'ERR_BAD_REQUEST' }),
    );
  });
});
