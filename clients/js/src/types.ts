// The payloads and routes the client uses, taken from the API's OpenAPI
// document (api/openapi.yaml) through openapi.ts, which openapi-typescript
// generates from it (npm run types). A field or route renamed in the
// document breaks the client's build wherever the client uses it, and the
// tests fail while openapi.ts is not the document's current rendering.

import type { components, operations, paths } from "./openapi.js";

type Schemas = components["schemas"];

/** One step event of a video, as /stream and /ws send it. */
export type StreamEvent = Schemas["Event"];
/** A video's status; completed, failed and cancelled are final. */
export type VideoStatus = Schemas["VideoStatus"];
/** A video. */
export type Video = Schemas["Video"];
/** The user, with their credits. */
export type User = Schemas["User"];
/** The body of POST /api/v1/videos/generate. */
export type GenerateRequest = Schemas["GenerateRequest"];
/** An error answer of the API. */
export type ErrorBody = Schemas["Error"];
/** The codes of the API's errors. */
export type ErrorCode = Schemas["ErrorCode"];

/** The answer of POST /api/v1/videos/{id}/ticket. */
export type Ticket = operations["createTicket"]["responses"][200]["content"]["application/json"];

/** The query of GET /api/v1/videos/{id}/stream and /ws besides the credential. */
export type StreamQuery = NonNullable<operations["streamVideoEvents"]["parameters"]["query"]> &
  NonNullable<operations["streamVideoEventsWebSocket"]["parameters"]["query"]>;

/** A route of one video, as the document names it. */
export type VideoRoute = Extract<keyof paths, `/api/v1/videos/{id}${string}`>;

/** videoPath fills in the {id} of a route of the document. */
export function videoPath(route: VideoRoute, id: number | string): string {
  return route.replace("{id}", encodeURIComponent(String(id)));
}
