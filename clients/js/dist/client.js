// createClient: the calls of stephub's JSON API that a front end makes
// around watching, with one place for the server's address and the user's
// credential.
import { StephubError, errorFromResponse, networkError } from "./errors.js";
import { videoPath } from "./types.js";
import { watchVideo } from "./watch.js";
/**
 * createClient returns a Client. Every failed call throws a StephubError
 * with the answer's status and code (status 0, code network, when nothing
 * answered); a 401 is retried once with a fresh token from getToken.
 */
export function createClient(options = {}) {
    const f = options.fetch ?? globalThis.fetch;
    if (!f)
        throw new TypeError("createClient: this runtime has no fetch; pass options.fetch");
    const here = globalThis.location?.href;
    if (options.baseUrl === undefined && here === undefined)
        throw new TypeError("createClient: baseUrl is required outside browsers");
    const base = new URL(options.baseUrl ?? "/", here).href.replace(/\/+$/, "");
    let token;
    let haveToken = false;
    async function currentToken() {
        if (!options.getToken)
            return options.token || undefined;
        if (!haveToken) {
            token = (await options.getToken()) || undefined;
            haveToken = true;
        }
        return token;
    }
    async function call(method, path, body, retried = false) {
        const t = await currentToken();
        const headers = { Accept: "application/json" };
        if (t)
            headers.Authorization = `Bearer ${t}`;
        else if (options.session)
            headers["X-Requested-With"] = "stephub";
        if (body !== undefined)
            headers["Content-Type"] = "application/json";
        let resp;
        try {
            resp = await f(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
        }
        catch (err) {
            throw networkError(err);
        }
        if (resp.ok)
            return (await resp.json());
        if (resp.status === 401 && options.getToken && !retried) {
            haveToken = false;
            return call(method, path, body, true);
        }
        throw await errorFromResponse(resp);
    }
    const route = (r) => r;
    return {
        generate: (body) => call("POST", route("/api/v1/videos/generate"), body),
        getVideo: (id) => call("GET", videoPath("/api/v1/videos/{id}", id)),
        cancel: (id) => call("POST", videoPath("/api/v1/videos/{id}/cancel", id)),
        me: () => call("GET", route("/api/v1/users/me")),
        watch: (videoId, o) => watchVideo({ ...o, videoId, baseUrl: base, token: options.token, getToken: options.getToken, session: options.session, ...(options.fetch ? { fetch: options.fetch } : {}) }),
    };
}
export { StephubError };
