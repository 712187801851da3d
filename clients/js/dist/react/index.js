// useVideoStream: the React hook of the original front end
// (lib/hooks/useVideoStream.ts), on top of watchVideo.
import { useEffect, useRef, useState } from "react";
import { watchVideo } from "../watch.js";
/** How many of the latest events recentLogs holds. */
export const RECENT_LOGS = 5;
const idle = (videoId) => ({ videoId, logs: [], state: "idle", streamError: null });
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
export function useVideoStream(videoId, options = {}) {
    const latest = useRef(options);
    const handle = useRef(null);
    const [snapshot, setSnapshot] = useState(() => idle(videoId));
    // The video whose events are in the snapshot, and the last one's id.
    const seen = useRef({ videoId, lastId: 0 });
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
                if (ev.status === "completed")
                    cb.onComplete?.(ev.video_url ?? null, ev);
                else if (ev.status === "failed")
                    cb.onError?.(ev.error || "The job failed.", ev);
                else if (ev.status === "cancelled")
                    cb.onCancel?.(ev);
            },
            onStatus(st) {
                const message = st.state === "error" ? (st.error?.message ?? "The stream failed.") : null;
                setSnapshot((s) => (s.videoId === videoId ? { ...s, state: st.state, streamError: message } : s));
                if (st.state === "error" && st.error)
                    latest.current.onError?.(st.error.message, st.error);
            },
        });
        handle.current = h;
        return () => {
            h.close();
            if (handle.current === h)
                handle.current = null;
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
