// Console bootstrap: the mode switch, the navigation frame, section rendering (with
// `navigate(section, params)` for views that lead elsewhere), the error banner and keyboard
// handling. Behaviour is wired through data-action attributes.

import { MODES, modeById, sectionsFor, modeOfSection } from './sections.js';
import { startupWarnings, spSession, appReady } from './ipc.js';
import { h, replaceChildren, paintBars } from './dom.js';
import { renderSpConnect } from './views/sp-admin.js';
import { loadRules } from './rules.js';

const state = { mode: MODES[0].id, section: null, remembered: {} };

const els = {
  body: document.body,
  modeSwitch: document.getElementById('mode-switch'),
  navTitle: document.getElementById('nav-title'),
  navList: document.getElementById('nav-list'),
  view: document.getElementById('view'),
  banner: document.getElementById('banner'),
  bannerText: document.getElementById('banner-text'),
};

/** Shows an error (or any message) in the banner: what happened and what to do. */
function showError(err) {
  els.bannerText.textContent = (err && err.message) || String(err);
  els.banner.dataset.kind = (err && err.kind) || 'unknown';
  els.banner.hidden = false;
}

function clearError() {
  els.banner.hidden = true;
  els.bannerText.textContent = '';
}

function renderNav() {
  const mode = modeById(state.mode);
  els.body.dataset.mode = mode.id;
  els.navTitle.textContent = mode.label;
  for (const radio of els.modeSwitch.querySelectorAll('[role="radio"]')) {
    const checked = radio.dataset.mode === mode.id;
    radio.setAttribute('aria-checked', String(checked));
    radio.tabIndex = checked ? 0 : -1;
  }
  replaceChildren(els.navList, sectionsFor(mode.id).map((section) => h('li', {},
    h('button', {
      type: 'button',
      class: 'nav-item',
      id: `nav-${section.id}`,
      dataset: { action: 'open-section', section: section.id },
      'aria-current': section.id === state.section ? 'page' : false,
      text: section.label,
    }))));
}

/** Opens a section (switching mode when it belongs to the other one) with view `params`. */
function navigate(id, params = {}) {
  const mode = modeOfSection(id);
  if (mode && mode !== state.mode) {
    state.remembered[state.mode] = state.section;
    state.mode = mode;
  }
  return openSection(id, { focus: true, params });
}

let renderSerial = 0;

async function openSection(id, { focus = false, params = {} } = {}) {
  const mode = modeById(state.mode);
  const sections = sectionsFor(mode.id);
  const section = sections.find((s) => s.id === id) || sections[0];
  state.section = section.id;
  const serial = ++renderSerial;
  clearError();
  renderNav();
  const heading = h('h1', { id: 'view-heading', tabindex: '-1', text: section.label });
  const body = h('div', { class: 'view-body', id: `view-${section.id}`, 'aria-busy': 'true' });
  replaceChildren(els.view,
    h('header', { class: 'view-header' }, h('p', { class: 'view-mode', id: 'view-mode', text: mode.title }), heading),
    body);
  if (focus) heading.focus();
  const context = {
    mode,
    params,
    showError,
    clearError,
    /** Goes elsewhere, unless the user already has: a late answer never pulls them back. */
    navigate: (to, p) => (serial === renderSerial ? navigate(to, p) : Promise.resolve()),
    /** Sets the view's heading (a job's name, a wizard's title). */
    setTitle: (text) => { heading.textContent = text; },
    /** Still the view on screen (a slow answer for a view left meanwhile is dropped). */
    current: () => serial === renderSerial,
  };
  try {
    if (section.needsSp && !(await spSession())) {
      await renderSpConnect(body, { ...context, then: () => openSection(section.id, { focus: true, params }) });
    } else {
      await section.render(body, context);
    }
    paintBars(body);
  } catch (err) {
    if (serial === renderSerial) showError(err);
  } finally {
    body.removeAttribute('aria-busy');
  }
}

function setMode(id, { focus = false } = {}) {
  if (!MODES.some((m) => m.id === id)) return;
  if (id === state.mode) return undefined;
  state.remembered[state.mode] = state.section;
  state.mode = id;
  if (focus) document.getElementById(`mode-${id}`).focus();
  const shared = sectionsFor(id).some((s) => s.id === state.section);
  return openSection(shared ? state.section : state.remembered[id] || null);
}

const actions = {
  'set-mode': (el) => setMode(el.dataset.mode),
  'open-section': (el) => openSection(el.dataset.section, { focus: true }),
  navigate: (el) => navigate(el.dataset.section, el.dataset.params ? JSON.parse(el.dataset.params) : {}),
  'dismiss-banner': () => clearError(),
  skip: (el, event) => {
    event.preventDefault();
    document.getElementById('view-heading')?.focus();
  },
};

document.addEventListener('click', (event) => {
  const el = event.target.closest('[data-action]');
  if (el && actions[el.dataset.action]) actions[el.dataset.action](el, event);
});

/** Arrow keys move within a group: the mode radios (selecting, as radios do) and the nav list. */
document.addEventListener('keydown', (event) => {
  const step = { ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1 }[event.key];
  const target = event.target;
  if (step === undefined || !(target instanceof HTMLElement)) return;
  if (target.getAttribute('role') === 'radio' && els.modeSwitch.contains(target)) {
    event.preventDefault();
    const index = MODES.findIndex((m) => m.id === target.dataset.mode);
    const next = MODES[(index + step + MODES.length) % MODES.length];
    setMode(next.id, { focus: true });
  } else if (target.classList.contains('nav-item') && (event.key === 'ArrowDown' || event.key === 'ArrowUp')) {
    event.preventDefault();
    const items = [...els.navList.querySelectorAll('.nav-item')];
    const next = items[(items.indexOf(target) + step + items.length) % items.length];
    next.focus();
  }
});

async function start() {
  try {
    await loadRules();
  } catch (err) {
    showError(err);
  }
  await openSection(null);
  try {
    const warnings = await startupWarnings();
    if (warnings.length > 0) showError({ kind: 'startup', message: warnings.join(' ') });
  } catch (err) {
    showError(err);
  }
  els.body.dataset.ready = 'true';
  appReady().then((ms) => { els.body.dataset.readyMs = String(ms); }, () => {});
}

start();
