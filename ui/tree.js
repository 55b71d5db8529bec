// The restore point browser: a folder tree loaded lazily, one folder and one page (of
// PAGE entries) at a time, so a point with a million files opens as fast as one with ten.
// It opens where the backed-up items are (the job's sources, expanded), with the folder it
// shows as a breadcrumb whose parts go up to any folder above. Optional checkboxes select
// items to restore; a checked folder covers everything below it.

import { h, replaceChildren, button } from './dom.js';
import * as fmt from './format.js';

/** Entries asked for per page of a folder. */
export const PAGE = 200;

/**
 * `load(path, offset, limit)` returns core's Page. `selected` (a Set of paths) turns on
 * checkboxes; `onChange` runs when it changes. Returns `{ el, reload(roots), refreshChecks() }`:
 * `reload(['/home/alice/docs'])` opens at those items (their folder as the breadcrumb, each
 * folder among them expanded); `reload()` or `reload(['/'])` at the top.
 */
export function tree({ load, selected, onChange, label = 'Restore point contents', onError }) {
  const root = h('ul', { class: 'tree', id: 'tree', 'aria-label': label });
  const crumbs = h('nav', { class: 'breadcrumb', id: 'tree-path', 'aria-label': 'Folder shown' });
  const el = h('div', { class: 'tree-view' }, crumbs, root);

  /** True when `path` or a folder above it is selected. */
  function covered(path) {
    if (!selected) return false;
    for (const s of selected) if (path === s || path.startsWith(s.endsWith('/') ? s : `${s}/`)) return true;
    return false;
  }

  function refreshChecks() {
    for (const box of root.querySelectorAll('input[type="checkbox"][data-path]')) {
      const path = box.dataset.path;
      const self = selected.has(path);
      const above = !self && covered(path);
      box.checked = self || above;
      box.disabled = above;
    }
  }

  function row(entry) {
    const isDir = entry.kind === 'Dir';
    const li = h('li', { class: `node ${isDir ? 'dir' : 'file'}`, dataset: { path: entry.path } });
    const children = h('ul', { class: 'tree-children', hidden: true });
    const parts = [];
    if (isDir) {
      const toggle = h('button', { type: 'button', class: 'twisty', 'aria-expanded': 'false', 'aria-label': `Open folder ${entry.name}`, dataset: { path: entry.path } });
      toggle.addEventListener('click', async () => {
        const open = toggle.getAttribute('aria-expanded') === 'true';
        if (open) {
          toggle.setAttribute('aria-expanded', 'false');
          children.hidden = true;
          return;
        }
        toggle.setAttribute('aria-expanded', 'true');
        children.hidden = false;
        if (!children.dataset.loaded) {
          children.dataset.loaded = 'true';
          await fill(children, entry.path, 0);
        }
      });
      parts.push(toggle);
    } else {
      parts.push(h('span', { class: 'twisty-space', 'aria-hidden': 'true' }));
    }
    const nameText = entry.kind === 'Symlink' && entry.target ? `${entry.name} → ${entry.target}` : entry.name;
    if (selected) {
      const box = h('input', { type: 'checkbox', id: `sel-${cssSafe(entry.path)}`, dataset: { path: entry.path }, 'aria-label': `Select ${entry.path}` });
      box.checked = covered(entry.path);
      box.disabled = !selected.has(entry.path) && box.checked;
      box.addEventListener('change', () => {
        if (box.checked) selected.add(entry.path); else selected.delete(entry.path);
        // A folder covers what is below it: drop selections inside it.
        if (box.checked && isDir) for (const s of [...selected]) if (s !== entry.path && s.startsWith(`${entry.path}/`)) selected.delete(s);
        refreshChecks();
        if (onChange) onChange();
      });
      parts.push(box, h('label', { for: box.id, class: 'node-name', text: nameText }));
    } else {
      parts.push(h('span', { class: 'node-name', text: nameText }));
    }
    parts.push(h('span', { class: 'node-meta', text: isDir ? fmt.dateTime(entry.mtime_ms) : `${fmt.bytes(entry.size)} · ${fmt.dateTime(entry.mtime_ms)}` }));
    li.append(h('div', { class: 'row' }, parts), children);
    return li;
  }

  /** Fills `list` with folder `path` from `offset`; with `only`, just those entries (all pages read). */
  async function fill(list, path, offset, only) {
    const loading = h('li', { class: 'hint', role: 'status', text: 'Loading…' });
    list.append(loading);
    try {
      if (only) {
        const wanted = new Set(only);
        const found = [];
        for (let at = 0; ;) {
          const page = await load(path, at, PAGE);
          found.push(...page.entries.filter((e) => wanted.has(e.path)));
          at = page.offset + page.entries.length;
          if (found.length === wanted.size || page.entries.length === 0 || at >= page.total) break;
        }
        loading.remove();
        // Sources not found as named (moved in the point's catalog): the whole folder.
        if (found.length === 0) {
          showCrumbs(path, null);
          return fill(list, path, 0);
        }
        const rows = found.map(row);
        list.append(...rows);
        // The backed-up folders open at once: their content is what the user came for.
        for (const li of rows) {
          const toggle = li.querySelector(':scope > .row > .twisty');
          if (toggle) toggle.click();
        }
        return rows[0];
      }
      const page = await load(path, offset, PAGE);
      loading.remove();
      if (page.total === 0) list.append(h('li', { class: 'hint', text: 'Empty folder' }));
      const rows = page.entries.map(row);
      list.append(...rows);
      const shown = page.offset + page.entries.length;
      if (shown < page.total) {
        const more = button(`Show ${fmt.count(Math.min(PAGE, page.total - shown))} more of ${fmt.count(page.total - shown)}`, { variant: 'link', id: `more-${cssSafe(path)}` });
        const holder = h('li', { class: 'more' }, more);
        more.addEventListener('click', async () => {
          holder.remove();
          const first = await fill(list, path, shown);
          const target = first && first.querySelector('.row > button, .row > input');
          if (target) target.focus();
        });
        list.append(holder);
      }
      return rows[0];
    } catch (err) {
      loading.remove();
      list.append(h('li', { class: 'field-error', text: err.message }));
      if (onError) onError(err);
      return undefined;
    }
  }

  /** The breadcrumb of folder `base`: each part a button that shows that folder whole. */
  function showCrumbs(base, only) {
    const parts = base.split('/').filter(Boolean);
    const items = [h('li', {}, crumb('/', 'All files', parts.length === 0 && !only))];
    parts.forEach((part, i) => {
      const path = `/${parts.slice(0, i + 1).join('/')}`;
      items.push(h('li', {}, crumb(path, part, i === parts.length - 1 && !only)));
    });
    replaceChildren(crumbs, h('span', { class: 'hint', text: only ? 'Backed-up items in' : 'Showing' }), h('ol', {}, items));
  }

  function crumb(path, text, current) {
    if (current) return h('span', { class: 'mono', 'aria-current': 'location', text });
    return button(text, { variant: 'link', label: path === '/' ? undefined : `${text}: show ${path}`, onClick: () => open(path, null) });
  }

  async function open(base, only) {
    showCrumbs(base, only);
    replaceChildren(root);
    await fill(root, base, 0, only);
  }

  return {
    el,
    /** Opens at `roots` (full paths inside the point): their common folder, them expanded. */
    async reload(roots = ['/']) {
      const clean = roots.filter((r) => r.startsWith('/') && r !== '/');
      if (clean.length === 0) return open('/', null);
      return open(commonFolder(clean), clean);
    },
    refreshChecks,
  };
}

/** The deepest folder every path of `paths` is below (`/` at least). */
export function commonFolder(paths) {
  const split = paths.map((p) => p.split('/').filter(Boolean));
  const common = [];
  for (let i = 0; ; i += 1) {
    const part = split[0][i];
    // A path's own last part is never its own folder.
    if (part === undefined || split.some((s) => s.length <= i + 1 || s[i] !== part)) break;
    common.push(part);
  }
  return `/${common.join('/')}`;
}

/** An id-safe form of a path. */
export function cssSafe(path) {
  return path.replace(/[^A-Za-z0-9_-]/g, (c) => `_${c.charCodeAt(0).toString(16)}`);
}
