import type { StephubError } from "../errors.js";
import type { StreamEvent, VideoStatus } from "../types.js";
import { type WatchOptions, type WatchState } from "../watch.js";
/** How many of the latest events recentLogs holds. */
export declare const RECENT_LOGS = 5;
/** The options of useVideoStream: watchVideo's, and the callbacks. */
export interface UseVideoStreamOptions extends Pick<WatchOptions, "baseUrl" | "token" | "getToken" | "session" | "tickets" | "transport" | "backoff" | "maxRefusals"> {
    /** false keeps the stream shut (default true). */
    enabled?: boolean;
    /** Each event, once, in order. */
    onEvent?: (event: StreamEvent) => void;
    /** The job completed: the video's address, and the terminal event. */
    onComplete?: (videoUrl: string | null, event: StreamEvent) => void;
    /** The job failed (cause: its terminal event), or the stream gave up (cause: the error). */
    onError?: (message: string, cause: StreamEvent | StephubError) => void;
    /** The job was cancelled. */
    onCancel?: (event: StreamEvent) => void;
}
/** What useVideoStream returns, redrawn as events arrive. */
export interface VideoStream {
    /** Every event so far, in order. */
    logs: StreamEvent[];
    /** The last RECENT_LOGS events. */
    recentLogs: StreamEvent[];
    /** The newest event's message: the step running now ("" before any). */
    currentStep: string;
    /** The newest event's step number (0 before any), of totalSteps. */
    step: number;
    totalSteps: number;
    /** 0..100. */
    progress: number;
    /** The server's estimate of the seconds left, as of the newest event; null before any. */
    eta: number | null;
    /** The video's status as of the newest event; null before any. */
    status: VideoStatus | null;
    /** Whether the stream is open now (the original's green dot). */
    connected: boolean;
    /** The watch's state; "idle" when there is no video, no credential yet, or enabled is false. */
    state: WatchState | "idle";
    /** Why the job failed, or why the stream gave up; null otherwise. */
    error: string | null;
    /** The finished video's address, once the job completed. */
    videoUrl: string | null;
    /** Dials again after the stream gave up (state "error"). */
    retry: () => void;
}
/**
 * useVideoStream watches videoId's events while the component is mounted,
 * and returns them with what the page shows of them. A null or undefined
 * videoId watches nothing. The stream closes on unmount and when videoId
 * changes (the new video starts from nothing); a change of baseUrl,
 * transport, session or tickets reopens it, resuming after the last event.
 * The token and the callbacks may change at any render without reopening
 * the stream: the latest ones are used. Without a credential (no token,
 * getToken or session: the sign-in still loading, say) the hook is idle,
 * and starts when one comes.
 */
export declare function useVideoStream(videoId: number | string | null | undefined, options?: UseVideoStreamOptions): VideoStream;
