// The errors the client reports.

import type { ErrorBody } from "./types.js";

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
export class StephubError extends Error {
  readonly status: number;
  readonly code: string;
  readonly fields: Record<string, string>;

  constructor(status: number, code: string, message: string, fields: Record<string, string> = {}) {
    super(message);
    this.name = "StephubError";
    this.status = status;
    this.code = code;
    this.fields = fields;
  }
}

/** What a status means when the answer has no error body (a proxy's, say). */
const STATUS_TEXT: Record<number, string> = {
  400: "The server refused the request as malformed.",
  401: "The access token is missing, invalid or expired.",
  402: "Payment required: not enough credits.",
  403: "Forbidden: the subscription is inactive, or this origin is not allowed.",
  404: "The video does not exist, or it belongs to someone else.",
  429: "Too many open streams for this user: close some tabs or streams.",
};

/**
 * The API's code for a status that says it alone (an answer to HEAD has no
 * body).
 */
const STATUS_CODE: Record<number, string> = { 401: "unauthorized", 404: "not_found", 429: "too_many_streams" };

/** errorFromResponse reads an error answer of the API. */
export async function errorFromResponse(resp: Response): Promise<StephubError> {
  let body: Partial<ErrorBody> | null = null;
  try {
    body = (await resp.json()) as Partial<ErrorBody>;
  } catch {
    // Not JSON: a proxy's page, or nothing.
  }
  const e = body?.error;
  if (e && typeof e.code === "string") {
    return new StephubError(resp.status, e.code, e.message ?? STATUS_TEXT[resp.status] ?? `HTTP ${resp.status}`, e.fields ?? {});
  }
  return new StephubError(resp.status, STATUS_CODE[resp.status] ?? `http_${resp.status}`,
    STATUS_TEXT[resp.status] ?? `The server answered HTTP ${resp.status}.`);
}

/** networkError is the error of a request that got no answer. */
export function networkError(cause?: unknown): StephubError {
  const err = new StephubError(0, "network", "The server cannot be reached.");
  if (cause !== undefined) (err as { cause?: unknown }).cause = cause;
  return err;
}
