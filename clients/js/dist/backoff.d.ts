/** The bounds of the pause between attempts; see backoffDelay. */
export interface BackoffOptions {
    /** The pause's ceiling after the first failure, in ms (default 1000). */
    initialMs?: number;
    /** The largest ceiling, in ms (default 15000). */
    maxMs?: number;
}
export declare const DEFAULT_BACKOFF: Required<BackoffOptions>;
/**
 * backoffDelay returns the pause, in ms, before attempt number attempt (0
 * for the first retry): a ceiling that doubles with each attempt, from
 * initialMs up to maxMs, of which a random half is taken off ("equal
 * jitter"), so that the clients a restart dropped all at once do not come
 * back all at once, and none comes back at once. random is Math.random, or
 * a stand-in in tests.
 */
export declare function backoffDelay(attempt: number, options?: BackoffOptions, random?: () => number): number;
