// Small DOM helpers: elements are built with createElement and textContent only, never
// from HTML strings, so no data can ever become markup. Also the console's building blocks:
// labelled fields, buttons, tables, quota bars and empty states.

let uniqueCounter = 0;

/** A page-unique id with a readable prefix. */
export function uid(prefix) {
  uniqueCounter += 1;
  return `${prefix}-${uniqueCounter}`;
}

/**
 * Creates an element. `attrs` keys are attributes, except `text` (textContent), `dataset`
 * (an object of data-* values) and `on` (an object of event listeners); children are nodes or
 * strings.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'text') el.textContent = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'on') for (const [name, fn] of Object.entries(value)) el.addEventListener(name, fn);
    else if (key === 'value') el.value = value;
    else if (key === 'checked') el.checked = !!value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces every child of `parent` with `children`. */
export function replaceChildren(parent, ...children) {
  parent.replaceChildren(...children.flat(Infinity).filter((c) => c !== undefined && c !== null && c !== false));
}

/** A definition list of `[term, value, id?]` rows. */
export function facts(rows) {
  return h('dl', { class: 'facts' }, rows.filter(Boolean).flatMap(([term, value, id]) => [
    h('dt', { text: term }),
    h('dd', { id }, value instanceof Node ? value : String(value ?? '')),
  ]));
}

/** A button. `variant`: primary (default), secondary, danger, link. */
export function button(text, { id, variant = 'primary', type = 'button', onClick, disabled, describedBy, label } = {}) {
  return h('button', {
    type,
    id,
    class: `button button-${variant}`,
    disabled,
    'aria-describedby': describedBy,
    'aria-label': label,
    text,
    on: onClick ? { click: onClick } : undefined,
  });
}

/**
 * A labelled input with an optional hint and an error slot. Returns `{ wrap, input, setError }`.
 * `kind`: text, password, number, date, time, textarea, checkbox.
 */
export function field({ label, id, kind = 'text', value = '', hint, required, placeholder, autocomplete, min, max, step, readonly }) {
  const inputId = id || uid('field');
  const hintId = hint ? `${inputId}-hint` : undefined;
  const errorId = `${inputId}-error`;
  const error = h('p', { class: 'field-error', id: errorId, hidden: true });
  let input;
  if (kind === 'textarea') {
    input = h('textarea', { id: inputId, rows: 4, required, placeholder, readonly });
    input.value = value;
  } else if (kind === 'checkbox') {
    input = h('input', { id: inputId, type: 'checkbox', checked: !!value });
  } else {
    input = h('input', {
      id: inputId, type: kind, value, required, placeholder, autocomplete, min, max, step, readonly,
      spellcheck: kind === 'text' ? 'false' : undefined,
    });
  }
  input.setAttribute('aria-describedby', [hintId, errorId].filter(Boolean).join(' '));
  const labelEl = h('label', { for: inputId, class: 'field-label' }, label, required ? h('span', { class: 'required', 'aria-hidden': 'true', text: ' *' }) : null);
  const wrap = kind === 'checkbox'
    ? h('div', { class: 'field field-check' }, input, labelEl, hint ? h('p', { class: 'hint', id: hintId, text: hint }) : null, error)
    : h('div', { class: 'field' }, labelEl, input, hint ? h('p', { class: 'hint', id: hintId, text: hint }) : null, error);
  function setError(message) {
    error.textContent = message || '';
    error.hidden = !message;
    if (message) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
  }
  return { wrap, input, setError };
}

/** A labelled select of `[value, text]` options. Returns `{ wrap, input }`. */
export function selectField({ label, id, options, value, hint }) {
  const inputId = id || uid('select');
  const hintId = hint ? `${inputId}-hint` : undefined;
  const input = h('select', { id: inputId, 'aria-describedby': hintId },
    options.map(([v, text]) => h('option', { value: v, text })));
  if (value !== undefined) input.value = value;
  const wrap = h('div', { class: 'field' },
    h('label', { for: inputId, class: 'field-label', text: label }), input,
    hint ? h('p', { class: 'hint', id: hintId, text: hint }) : null);
  return { wrap, input };
}

/** A group of radio buttons with a legend. Returns `{ wrap, value() , inputs}`. */
export function radioGroup({ legend, name, options, value, hint }) {
  const groupName = name || uid('radio');
  const inputs = [];
  const items = options.map(([v, text, help]) => {
    const id = uid(groupName);
    const input = h('input', { type: 'radio', name: groupName, id, value: v, checked: v === value });
    inputs.push(input);
    return h('div', { class: 'radio' }, input,
      h('label', { for: id }, h('span', { class: 'radio-title', text }), help ? h('span', { class: 'hint', text: help }) : null));
  });
  const wrap = h('fieldset', { class: 'field radio-group' }, h('legend', { class: 'field-label', text: legend }),
    hint ? h('p', { class: 'hint', text: hint }) : null, items);
  return { wrap, inputs, value: () => inputs.find((i) => i.checked)?.value };
}

/**
 * An accessible table: `columns` are `[header, render(row) -> node|string, className?]`.
 * `caption` names it for assistive technology (visually hidden unless `showCaption`).
 */
export function table({ caption, columns, rows, id, empty }) {
  if (rows.length === 0 && empty) {
    // The empty state keeps the table's id: the same place on the page says "nothing yet".
    const box = emptyState(empty);
    if (id) box.id = id;
    return box;
  }
  // A wide table scrolls inside its own region (never the page), reachable by keyboard.
  return h('div', { class: 'table-wrap', role: 'region', tabindex: 0, 'aria-label': caption }, h('table', { class: 'table', id },
    h('caption', { class: 'visually-hidden', text: caption }),
    h('thead', {}, h('tr', {}, columns.map(([head, , cls]) => h('th', { scope: 'col', class: cls, text: head })))),
    h('tbody', {}, rows.map((row) => h('tr', {}, columns.map(([, render, cls]) => {
      const v = render(row);
      return h('td', { class: cls }, v instanceof Node ? v : String(v ?? ''));
    }))))));
}

/** A bar for a share of a whole (quota use), 0..1; `unlimited` draws none. */
export function meter({ share, label, unlimited }) {
  const pct = Math.round(Math.min(1, Math.max(0, share || 0)) * 100);
  const level = pct >= 90 ? 'high' : pct >= 75 ? 'mid' : 'low';
  return h('div', {
    class: `meter meter-${unlimited ? 'none' : level}`,
    role: 'meter',
    'aria-label': label,
    'aria-valuemin': 0,
    'aria-valuemax': 100,
    'aria-valuenow': unlimited ? 0 : pct,
    'aria-valuetext': unlimited ? 'unlimited' : `${pct} %`,
  }, h('div', { class: 'meter-fill', dataset: { pct: unlimited ? '0' : String(pct) } }));
}

/** Sets the width of meter and progress fills from their data-pct (CSSOM, CSP-safe). */
export function paintBars(root) {
  for (const fill of root.querySelectorAll('[data-pct]')) fill.style.width = `${fill.dataset.pct}%`;
}

/** A message for an empty list, with an optional action button. */
export function emptyState(text, action) {
  return h('div', { class: 'empty' }, h('p', { text }), action || null);
}

/** A status badge for a result: success, warning, failed, stopped, running. */
export function badge(result) {
  const text = { success: 'Success', warning: 'Warning', failed: 'Failed', stopped: 'Stopped', running: 'Running', suspicious: 'Suspicious', proven: 'Proven restorable' }[result] || result || '—';
  return h('span', { class: `badge badge-${result || 'none'}`, text });
}

/** A section of a view with a heading. */
export function panel(title, ...children) {
  const id = uid('panel');
  return h('section', { class: 'panel', 'aria-labelledby': id }, h('h2', { id, text: title }), children);
}
