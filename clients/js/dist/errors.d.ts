/**
 * StephubError is a failure the caller can act on: the HTTP status (0 when
 * the server could not be reached or said nothing), the API's snake_case
 * code, a message fit to show, and for validation errors the fields.
 *
 * Codes of the server (api/openapi.yaml's): unauthorized, not_found,
 * insufficient_credits (402), subscription_inactive (403),
 * origin_not_allowed (403), too_many_streams (429), bad_last_event_id (400),
 * and more. Codes of the client: network (nothing answered), refused (a
 * WebSocket or EventSource that the server, which is up, would not open:
 * browsers do not tell why), no_credential (neither a token nor a session
 * to stream with), http_<status> (an answer without the API's error body).
 */
export declare class StephubError extends Error {
    readonly status: number;
    readonly code: string;
    readonly fields: Record<string, string>;
    constructor(status: number, code: string, message: string, fields?: Record<string, string>);
}
/** errorFromResponse reads an error answer of the API. */
export declare function errorFromResponse(resp: Response): Promise<StephubError>;
/** networkError is the error of a request that got no answer. */
export declare function networkError(cause?: unknown): StephubError;
