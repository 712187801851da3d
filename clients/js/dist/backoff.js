// How long to wait before dialling again.
export const DEFAULT_BACKOFF = { initialMs: 1000, maxMs: 15_000 };
/**
 * backoffDelay returns the pause, in ms, before attempt number attempt (0
 * for the first retry): a ceiling that doubles with each attempt, from
 * initialMs up to maxMs, of which a random half is taken off ("equal
 * jitter"), so that the clients a restart dropped all at once do not come
 * back all at once, and none comes back at once. random is Math.random, or
 * a stand-in in tests.
 */
export function backoffDelay(attempt, options = {}, random = Math.random) {
    const initial = options.initialMs ?? DEFAULT_BACKOFF.initialMs;
    const max = options.maxMs ?? DEFAULT_BACKOFF.maxMs;
    const ceiling = Math.min(max, initial * 2 ** Math.min(Math.max(attempt, 0), 30));
    return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
