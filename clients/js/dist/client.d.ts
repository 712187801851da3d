import { StephubError } from "./errors.js";
import { type GenerateRequest, type User, type Video } from "./types.js";
import { type WatchHandle, type WatchOptions } from "./watch.js";
/** How the client reaches the server and signs in. */
export interface ClientOptions {
    /** The server; in a browser the page's origin by default. */
    baseUrl?: string;
    /** The user's access token. */
    token?: string;
    /** Returns the user's access token; called again after a 401. */
    getToken?: () => string | null | undefined | Promise<string | null | undefined>;
    /** Sign in with the browser's session cookie (the server's own pages). */
    session?: boolean;
    fetch?: typeof fetch;
}
/** A client of one server for one user. Safe to share; it keeps no state but the token. */
export interface Client {
    /** POST /api/v1/videos/generate: the new video. 402 insufficient_credits and 403 subscription_inactive throw. */
    generate(body: GenerateRequest): Promise<Video>;
    /** GET /api/v1/videos/{id}. */
    getVideo(id: number | string): Promise<Video>;
    /** POST /api/v1/videos/{id}/cancel: the cancelled video; 409 video_finished throws. */
    cancel(id: number | string): Promise<Video>;
    /** GET /api/v1/users/me: the user and their credits. */
    me(): Promise<User>;
    /** watchVideo with this client's server and credential. */
    watch(videoId: number | string, options: Omit<WatchOptions, "videoId" | "baseUrl" | "token" | "getToken" | "session" | "fetch">): WatchHandle;
}
/**
 * createClient returns a Client. Every failed call throws a StephubError
 * with the answer's status and code (status 0, code network, when nothing
 * answered); a 401 is retried once with a fresh token from getToken.
 */
export declare function createClient(options?: ClientOptions): Client;
export { StephubError };
