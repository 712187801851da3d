// The payloads and routes the client uses, taken from the API's OpenAPI
// document (api/openapi.yaml) through openapi.ts, which openapi-typescript
// generates from it (npm run types). A field or route renamed in the
// document breaks the client's build wherever the client uses it, and the
// tests fail while openapi.ts is not the document's current rendering.
/** videoPath fills in the {id} of a route of the document. */
export function videoPath(route, id) {
    return route.replace("{id}", encodeURIComponent(String(id)));
}
