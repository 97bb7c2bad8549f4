/** `POST /requeue`: expired leases (or named files) from cur/ back to new/. */
import { HttpError, sendJson } from './http-error.js';
import { nameParams, type RequestContext, type Route } from './router.js';

/** The requeue route. */
export const requeueRoutes: readonly Route[] = [{ method: 'POST', path: '/requeue', handler: requeue }];

/**
 * `POST /requeue?olderThan=MS[&maxDeliveries=N]` requeues by age,
 * `POST /requeue?name=NAME[&name=...]` by hand; answers `200 {"requeued": [names]}`.
 */
async function requeue({ store, req, res, query }: RequestContext): Promise<void> {
  const names = nameParams(req.url, 'name');
  const olderThan = query.get('olderThan');
  if ((names.length === 0) === (olderThan === null)) {
    throw new HttpError(400, 'ERR_BAD_REQUEST', 'give either olderThan=MS or name=NAME');
  }
  const requeued =
    names.length > 0
      ? await store.requeue({ names })
      : await store.requeue({
          olderThan: numberParam(olderThan, 'olderThan'),
          maxDeliveries: numberParam(query.get('maxDeliveries'), 'maxDeliveries', Number.POSITIVE_INFINITY),
        });
  sendJson(res, 200, { requeued });
}

function numberParam(value: string | null, key: string, fallback?: number): number {
  if (value === null && fallback !== undefined) return fallback;
  if (value === null || !/^\d+$/.test(value)) {
    throw new HttpError(400, 'ERR_BAD_REQUEST', `${key} must be a whole number, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}
