// useVideoStream: the React hook of the original front end
// (lib/hooks/useVideoStream.ts), on top of watchVideo.

import { useEffect, useRef, useState } from "react";
import type { StephubError } from "../errors.js";
import type { StreamEvent, VideoStatus } from "../types.js";
import { watchVideo, type WatchHandle, type WatchOptions, type WatchState } from "../watch.js";

/** How many of the latest events recentLogs holds. */
export const RECENT_LOGS = 5;

/** The options of useVideoStream: watchVideo's, and the callbacks. */
export interface UseVideoStreamOptions
  extends Pick<WatchOptions, "baseUrl" | "token" | "getToken" | "session" | "tickets" | "transport" | "backoff" | "maxRefusals"> {
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

interface Snapshot {
  videoId: number | string | null | undefined;
  logs: StreamEvent[];
  state: WatchState | "idle";
  streamError: string | null;
}

const idle = (videoId: Snapshot["videoId"]): Snapshot => ({ videoId, logs: [], state: "idle", streamError: null });

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
export function useVideoStream(videoId: number | string | null | undefined, options: UseVideoStreamOptions = {}): VideoStream {
  const latest = useRef(options);
  const handle = useRef<WatchHandle | null>(null);
  const [snapshot, setSnapshot] = useState<Snapshot>(() => idle(videoId));
  // The video whose events are in the snapshot, and the last one's id.
  const seen = useRef<{ videoId: Snapshot["videoId"]; lastId: number }>({ videoId, lastId: 0 });

  // Declared first, so it runs before the watch's effect.
  useEffect(() => {
    latest.current = options;
  });

  // A token that is not there yet (auth still loading) is no reason to
  // give up: the watch waits for one. Its value is not a dependency, so a
  // renewed token does not reopen a stream that works.
  const hasCredential = Boolean(options.token || options.getToken || options.session);
  const active = videoId !== null && videoId !== undefined && options.enabled !== false && hasCredential;
  const { baseUrl, transport, session, tickets } = options;
  useEffect(() => {
    if (seen.current.videoId !== videoId) {
      // Another video: its events start from nothing.
      seen.current = { videoId, lastId: 0 };
      setSnapshot(idle(videoId));
    }
    if (!active) {
      // Disabled (or no video): the events stay, and enabling resumes.
      setSnapshot((s) => (s.state === "idle" ? s : { ...s, state: "idle", streamError: null }));
      return;
    }
    const o = latest.current;
    const h = watchVideo({
      videoId,
      baseUrl,
      transport,
      session,
      tickets,
      backoff: o.backoff,
      maxRefusals: o.maxRefusals,
      lastEventId: seen.current.lastId,
      // Asked at each dial, so a token that changed is used.
      getToken: () => {
        const { getToken, token } = latest.current;
        return getToken ? getToken() : token;
      },
      onEvent(ev) {
        seen.current = { videoId, lastId: ev.id };
        setSnapshot((s) => (s.videoId === videoId ? { ...s, logs: [...s.logs, ev] } : s));
        const cb = latest.current;
        cb.onEvent?.(ev);
        if (ev.status === "completed") cb.onComplete?.(ev.video_url ?? null, ev);
        else if (ev.status === "failed") cb.onError?.(ev.error || "The job failed.", ev);
        else if (ev.status === "cancelled") cb.onCancel?.(ev);
      },
      onStatus(st) {
        const message = st.state === "error" ? (st.error?.message ?? "The stream failed.") : null;
        setSnapshot((s) => (s.videoId === videoId ? { ...s, state: st.state, streamError: message } : s));
        if (st.state === "error" && st.error) latest.current.onError?.(st.error.message, st.error);
      },
    });
    handle.current = h;
    return () => {
      h.close();
      if (handle.current === h) handle.current = null;
    };
  }, [active, videoId, baseUrl, transport, session, tickets]);

  const s = snapshot.videoId === videoId ? snapshot : idle(videoId);
  const last = s.logs.at(-1);
  return {
    logs: s.logs,
    recentLogs: s.logs.slice(-RECENT_LOGS),
    currentStep: last?.message ?? "",
    step: last?.step ?? 0,
    totalSteps: last?.total_steps ?? 0,
    progress: last?.progress ?? 0,
    eta: last?.eta_seconds ?? null,
    status: last?.status ?? null,
    connected: s.state === "open",
    state: s.state,
    error: last?.status === "failed" ? last.error || "The job failed." : s.streamError,
    videoUrl: last?.status === "completed" ? (last.video_url ?? null) : null,
    retry: () => handle.current?.retry(),
  };
}
