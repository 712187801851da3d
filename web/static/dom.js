// Small DOM helpers. Text always goes in as text, never as HTML: prompts and
// messages come from users and workers.

/** Returns the element with the id, which the page must have. */
export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`index.html has no #${id}`);
  return node;
}

/**
 * Creates an element. props sets properties (className, href, …) and
 * data-* attributes ({dataset: {…}}); children are nodes or strings.
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  const { dataset, ...rest } = props;
  Object.assign(node, rest);
  if (dataset) Object.assign(node.dataset, dataset);
  node.append(...children);
  return node;
}

/**
 * Lets a plain click on a link navigate inside the page, leaving
 * Ctrl/Cmd/Shift/middle clicks to open new tabs as usual.
 */
export function isPlainClick(e) {
  return e.button === 0 && !e.metaKey && !e.ctrlKey && !e.shiftKey && !e.altKey;
}
