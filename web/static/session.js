// The signed-in state of the dashboard. The user's access token lives in
// an HttpOnly cookie that the server sets (stephub_session), out of reach
// of every script, so this page never holds it and never puts it in a URL
// it opens. What the page keeps is a flag in localStorage, with nothing
// secret in it, that says this browser signed in, and tells the other tabs
// when it signs in or out.

const FLAG = "stephub_signed_in";

/**
 * Takes a sign-in link's ?token=… out of the address bar, so that it is
 * neither bookmarked, shared with a copied link, nor kept in the history.
 * The server has already made the token the session cookie, if it is
 * valid. Returns whether the address held one.
 */
export function takeTokenFromURL() {
  const url = new URL(window.location.href);
  if (!url.searchParams.has("token")) return false;
  url.searchParams.delete("token");
  history.replaceState(history.state, "", url.pathname + url.search + url.hash);
  return true;
}

/** Whether this browser signed in and has not signed out since. */
export function signedIn() {
  return localStorage.getItem(FLAG) !== null;
}

/** Notes a sign-in, which the other tabs hear of through onSessionChange. */
export function markSignedIn() {
  localStorage.setItem(FLAG, String(Date.now()));
}

/** Notes a sign-out. */
export function markSignedOut() {
  localStorage.removeItem(FLAG);
}

/**
 * Calls fn(signedIn) whenever another tab signs in or out. (The storage
 * event fires only in the other tabs.)
 */
export function onSessionChange(fn) {
  window.addEventListener("storage", (e) => {
    if (e.key === FLAG || e.key === null) fn(signedIn());
  });
}
