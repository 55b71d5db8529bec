// The navigation frame's sections, per console mode (DESIGN §8). A section is listed only
// once its feature is built; each later issue adds its sections here.

import { renderAbout } from './views/about.js';
import { renderLogs } from './views/logs.js';

/** The console's two modes, in switch order. */
export const MODES = [
  { id: 'tenant', label: 'Tenant', title: 'Tenant mode' },
  { id: 'sp', label: 'Service provider', title: 'Service provider mode' },
];

/**
 * Every section: `id` (unique), `label` (navigation text), `modes` (where it is listed),
 * `render(container, context)` (fills the view; may be async).
 */
export const SECTIONS = [
  { id: 'about', label: 'About', modes: ['tenant', 'sp'], render: renderAbout },
  { id: 'logs', label: 'Logs', modes: ['tenant', 'sp'], render: renderLogs },
];

/** The sections listed in `mode`, in navigation order. */
export function sectionsFor(mode) {
  return SECTIONS.filter((section) => section.modes.includes(mode));
}

/** The mode record for an id. */
export function modeById(id) {
  return MODES.find((mode) => mode.id === id) || MODES[0];
}
