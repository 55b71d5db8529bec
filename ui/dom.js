// Small DOM helpers: elements are built with createElement and textContent only, never
// from HTML strings, so no data can ever become markup.

/**
 * Creates an element. `attrs` keys are attributes, except `text` (textContent) and
 * `dataset` (an object of data-* values); children are nodes or strings.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'text') el.textContent = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces every child of `parent` with `children`. */
export function replaceChildren(parent, ...children) {
  parent.replaceChildren(...children.flat().filter((c) => c !== undefined && c !== null));
}

/** A definition list of `[term, value, id?]` rows. */
export function facts(rows) {
  return h('dl', { class: 'facts' }, rows.flatMap(([term, value, id]) => [
    h('dt', { text: term }),
    h('dd', { id, text: value }),
  ]));
}
