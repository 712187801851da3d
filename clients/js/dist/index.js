// @stephub/client: watch a stephub video's step events from a browser or
// Node.js, with no dependencies. The React hook is at @stephub/client/react.
export { watchVideo, isTerminal, TERMINAL_STATUSES } from "./watch.js";
export { createClient } from "./client.js";
export { StephubError } from "./errors.js";
export { SSEParser } from "./sse.js";
export { backoffDelay } from "./backoff.js";
