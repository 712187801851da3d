// @stephub/client: watch a stephub video's step events from a browser or
// Node.js, with no dependencies. The React hook is at @stephub/client/react.

export { watchVideo, isTerminal, TERMINAL_STATUSES } from "./watch.js";
export type { Transport, WatchHandle, WatchOptions, WatchState, WatchStatus } from "./watch.js";
export { createClient } from "./client.js";
export type { Client, ClientOptions } from "./client.js";
export { StephubError } from "./errors.js";
export { SSEParser } from "./sse.js";
export type { SSEMessage } from "./sse.js";
export { backoffDelay } from "./backoff.js";
export type { BackoffOptions } from "./backoff.js";
export type { ErrorBody, GenerateRequest, StreamEvent, Ticket, User, Video, VideoStatus } from "./types.js";
