// Formatting of numbers and times for people.

/** "8 s", "1 min 05 s", "—" for a missing or negative value. */
export function formatDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "—";
  const s = Math.ceil(seconds);
  if (s < 60) return `${s} s`;
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** A video's creation time in the reader's locale. */
export function formatDate(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : dateTime.format(d);
}

/** Credits with the reader's thousands separator. */
export function formatCredits(n) {
  return Number.isFinite(n) ? n.toLocaleString() : "—";
}
