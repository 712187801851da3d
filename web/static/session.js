// The signed-in user's access token, kept in localStorage under
// "access_token" (the key the original front end used) so that every tab of
// the dashboard shares it.

const KEY = "access_token";

/**
 * Moves a token given as ?token=… into storage and out of the address bar,
 * so that it is neither bookmarked, shared with a copied link, nor kept in
 * the history.
 */
export function takeTokenFromURL() {
  const url = new URL(window.location.href);
  const token = url.searchParams.get("token");
  if (token === null) return;
  url.searchParams.delete("token");
  history.replaceState(history.state, "", url.pathname + url.search + url.hash);
  if (token.trim() !== "") setToken(token);
}

/** Returns the stored token, or "" when signed out. */
export function getToken() {
  return localStorage.getItem(KEY) ?? "";
}

/** Stores a token; other tabs see it through onTokenChange. */
export function setToken(token) {
  localStorage.setItem(KEY, token.trim());
}

/** Forgets the token. */
export function clearToken() {
  localStorage.removeItem(KEY);
}

/**
 * Calls fn with the new token whenever another tab signs in or out. (The
 * storage event fires only in the other tabs.)
 */
export function onTokenChange(fn) {
  window.addEventListener("storage", (e) => {
    if (e.key === KEY || e.key === null) fn(getToken());
  });
}
