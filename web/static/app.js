// The dashboard: signs in, shows the user and credits, generates videos,
// lists them, and watches one at /videos/{id}. Each part lives in its own
// module; this one wires them together and owns the page's state.

import {
  VIDEO_COST, cancelVideo, createSession, deleteSession, fetchMe, getVideo, setUnauthorizedHandler,
} from "./api.js";
import { byId } from "./dom.js";
import { formatCredits } from "./format.js";
import { setupGenerateForm } from "./generate-form.js";
import { markSignedIn, markSignedOut, onSessionChange, signedIn, takeTokenFromURL } from "./session.js";
import { openStreams } from "./streams.js";
import { VideoList } from "./video-list.js";
import { WatchPanel } from "./watch-view.js";

const TRANSPORT_KEY = "stephub_transport";
const WATCH_PATH = /^\/videos\/(\d+)\/?$/;

const signin = byId("signin");
const dashboard = byId("dashboard");
const watchCard = byId("watch");
const generateCard = byId("generate");
const accountBar = byId("account");
const creditsNode = byId("credits");

let credits = null;
/** The watched video and its stream handle, or null. */
let watching = null;

// ?shared=0 streams from the tab itself rather than the shared worker, so
// that the stream shows in this tab's DevTools (the Network panel).
const shared = typeof SharedWorker === "function" && new URLSearchParams(window.location.search).get("shared") !== "0";
const streams = openStreams({
  shared,
  onWorkerError: (message) => console.error(`stephub stream worker: ${message}`),
});

// Tells the other tabs of this browser that the balance or the list
// changed (a video generated here), so that they show the same credits.
const account = "BroadcastChannel" in window ? new BroadcastChannel("stephub-account") : null;
account?.addEventListener("message", () => {
  if (dashboard.hidden) return;
  refreshMe();
  videos.refresh();
});

const panel = new WatchPanel({
  shared,
  onCancel: cancel,
  onRetry: (videoId) => {
    if (watching?.videoId === videoId) watching.handle.retry();
  },
  onFinished: () => {
    // Credits move when a job ends: a failed or cancelled one refunds.
    refreshMe();
    videos.refresh();
  },
});

const videos = new VideoList({ onOpen: (videoId) => navigate(`/videos/${videoId}`, { focus: true }) });

setupGenerateForm({
  freshCredits: async () => {
    await refreshMe();
    return formatCredits(credits);
  },
  onCreated(video) {
    refreshMe();
    videos.refresh();
    account?.postMessage("changed");
    navigate(`/videos/${video.id}`, { focus: true });
  },
});

setUnauthorizedHandler(() =>
  showSignIn("Your session has expired or the token is not valid. Paste a new access token to go on.", { error: true, expired: true }));

// --- signing in ---------------------------------------------------------

/**
 * Shows the sign-in form with a message, styled as an error or not. A
 * session that expired while a video is watched (say, as its job completes
 * and the page asks for the new balance) keeps that video in view, its
 * outcome and player included, under the form; the rest of the dashboard
 * needs the session and goes.
 */
function showSignIn(message, { error = false, expired = false } = {}) {
  const keepWatching = expired && watching !== null && !dashboard.hidden;
  if (!keepWatching) {
    unwatch();
    dashboard.hidden = true;
  }
  document.body.classList.toggle("session-lost", keepWatching);
  accountBar.hidden = true;
  signin.hidden = false;
  const node = byId("signin-message");
  node.textContent = message;
  node.className = error ? "alert" : "info";
  // Taking the focus from a video being watched would scroll it away.
  if (!keepWatching) byId("token-input").focus();
}

/**
 * Shows the dashboard for the session cookie, or the sign-in form if there
 * is none. After a sign-in in this tab (fresh), tells the other tabs.
 */
async function enter({ fresh = false } = {}) {
  let me;
  try {
    me = await fetchMe();
  } catch (err) {
    if (err.status !== 401) showSignIn(`Signing in failed: ${err.message}`, { error: true });
    return; // a 401 has shown the sign-in form already
  }
  if (fresh) markSignedIn();
  showMe(me);
  document.body.classList.remove("session-lost");
  signin.hidden = true;
  dashboard.hidden = false;
  accountBar.hidden = false;
  videos.refresh();
  const before = watching;
  route();
  // Signed in again while watching (in this tab or another): a stream that
  // gave up on the old session dials again.
  if (before && watching === before) watching.handle.retry();
}

async function refreshMe() {
  try {
    showMe(await fetchMe());
  } catch {
    // A 401 shows the sign-in form; anything else keeps the last balance.
  }
}

function showMe(me) {
  credits = me.credits;
  byId("user-name").textContent = me.email || me.id;
  creditsNode.textContent = formatCredits(me.credits);
  byId("credits-badge").classList.toggle("low", me.credits < VIDEO_COST);
}

byId("signin-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const token = byId("token-input").value.trim();
  if (!token) return;
  byId("token-input").value = "";
  try {
    await createSession(token);
  } catch (err) {
    if (err.status !== 401) showSignIn(`Signing in failed: ${err.message}`, { error: true });
    return; // a 401 has shown the sign-in form already
  }
  enter({ fresh: true });
});

byId("sign-out").addEventListener("click", async () => {
  // The cookie is out of this page's reach: only the server can clear it.
  try {
    await deleteSession();
  } catch (err) {
    byId("account-error").textContent = `Signing out failed: ${err.message}`;
    return;
  }
  byId("account-error").textContent = "";
  markSignedOut();
  showSignIn("You are signed out. Paste an access token to sign in again.");
});

onSessionChange((now) => {
  if (now) enter();
  else showSignIn("You signed out in another tab.");
});

// --- watching ------------------------------------------------------------

function transport() {
  return localStorage.getItem(TRANSPORT_KEY) === "ws" ? "ws" : "sse";
}

function showTransport() {
  for (const radio of document.querySelectorAll('input[name="transport"]')) radio.checked = radio.value === transport();
}

for (const radio of document.querySelectorAll('input[name="transport"]')) {
  radio.addEventListener("change", () => {
    localStorage.setItem(TRANSPORT_KEY, radio.value);
    watching?.handle.setTransport(radio.value);
  });
}
window.addEventListener("storage", (e) => {
  if (e.key !== TRANSPORT_KEY) return;
  showTransport();
  watching?.handle.setTransport(transport());
});

/**
 * Watches a video, or nothing (null). With focus, the watch card takes the
 * keyboard focus and, where it is out of view (on a phone it moved to the
 * top while the list was in view), the page scrolls to it.
 */
function watch(videoId, { focus = false } = {}) {
  if (watching?.videoId === videoId) return;
  unwatch();
  videos.setCurrent(videoId);
  if (videoId === null) {
    panel.hide();
    return;
  }
  panel.show(videoId);
  const handle = streams.watch(videoId, { transport: transport() }, (update) => {
    panel.update(update);
    if (update.state === "unauthorized") showSignIn("Your access token is not valid any more. Paste a new one to go on.", { error: true, expired: true });
    const last = update.events?.at(-1);
    if (last) videos.applyEvent(videoId, last);
  });
  watching = { videoId, handle };
  getVideo(videoId).then((video) => panel.setVideo(video), (err) => {
    if (err.status === 404 && watching?.videoId === videoId) panel.showNotFound(`There is no video #${videoId} in your account.`);
  });
  if (focus) {
    watchCard.focus({ preventScroll: true });
    const top = watchCard.getBoundingClientRect().top;
    if (top < 0 || top > window.innerHeight / 3) watchCard.scrollIntoView({ block: "start" });
  }
}

function unwatch() {
  watching?.handle.close();
  watching = null;
}

async function cancel(videoId) {
  panel.setCancelState({ busy: true });
  try {
    await cancelVideo(videoId);
    // The stream brings the cancelled event, which ends the job in every tab.
    panel.setCancelState({ busy: false });
  } catch (err) {
    const why = err.code === "video_finished" ? "The job had already finished." : err.message;
    panel.setCancelState({ busy: false, error: `Could not cancel: ${why}` });
  }
}

// --- routing -------------------------------------------------------------

/**
 * Shows what the address names. On a watch page the watch card comes
 * first in the document, so that Tab and screen readers reach it before
 * the form, as phones show it first; the grid places the cards the same
 * way on wide screens whatever their order.
 */
function route(options) {
  const m = WATCH_PATH.exec(window.location.pathname);
  document.body.classList.toggle("watching", m !== null);
  // Moved only when out of place: a move takes the focus from inside.
  if (m && watchCard.nextElementSibling !== generateCard) generateCard.before(watchCard);
  else if (!m && generateCard.nextElementSibling !== watchCard) generateCard.after(watchCard);
  watch(m ? Number(m[1]) : null, options);
}

function navigate(path, options) {
  if (window.location.pathname !== path) history.pushState(null, "", path);
  route(options);
}

window.addEventListener("popstate", () => {
  if (!dashboard.hidden) route();
});

// --- start ---------------------------------------------------------------

// A sign-in link (?token=…) has made its token the session cookie, if it is
// valid; otherwise a browser that signed in before has one, or had.
showTransport();
if (takeTokenFromURL()) enter({ fresh: true });
else if (signedIn()) enter();
else showSignIn("Paste an access token to sign in.");
