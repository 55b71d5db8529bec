// The navigation frame's sections, per console mode (DESIGN §8): which views exist, their
// labels and where they are listed. Each view module renders one section.

import { renderAbout } from './views/about.js';
import { renderLogs } from './views/logs.js';
import { renderHome } from './views/home.js';
import { renderProviders } from './views/providers.js';
import { renderJobs } from './views/jobs.js';
import { renderPoints } from './views/points.js';
import { renderRecoveryMedia } from './views/recovery.js';
import { renderSessions } from './views/sessions.js';
import { renderSubtenants } from './views/subtenants.js';
import { renderPolicies } from './views/policies.js';
import { renderReplication } from './views/replication.js';
import { renderNotifications, renderSpNotifications } from './views/notifications.js';
import { renderSpTenants, renderSpSubtenants } from './views/sp-tenants.js';
import { renderSpRepos } from './views/sp-repos.js';
import { renderSpPlans } from './views/sp-plans.js';
import {
  renderSpConnection, renderSpGateways, renderSpCertificate,
  renderSpUsage, renderSpRecycleBin, renderSpMaintenance, renderSpAdmins,
} from './views/sp-admin.js';

/** The console's two modes, in switch order. */
export const MODES = [
  { id: 'tenant', label: 'Tenant', title: 'Tenant mode' },
  { id: 'sp', label: 'Service provider', title: 'Service provider mode' },
];

/**
 * Every section: `id` (unique), `label` (navigation text), `modes` (where it is listed),
 * `render(container, context)` (fills the view; may be async). SP sections other than the
 * connection ask to connect first (`needsSp`).
 */
export const SECTIONS = [
  { id: 'home', label: 'Home', modes: ['tenant'], render: renderHome },
  { id: 'providers', label: 'Service providers', modes: ['tenant'], render: renderProviders },
  { id: 'jobs', label: 'Backup jobs', modes: ['tenant'], render: renderJobs },
  { id: 'policies', label: 'Backup policies', modes: ['tenant'], render: renderPolicies },
  { id: 'points', label: 'Restore points', modes: ['tenant'], render: renderPoints },
  { id: 'recovery', label: 'Recovery media', modes: ['tenant'], render: renderRecoveryMedia },
  { id: 'replication', label: 'Replication', modes: ['tenant'], render: renderReplication },
  { id: 'sessions', label: 'Sessions', modes: ['tenant'], render: renderSessions },
  { id: 'subtenants', label: 'Subtenants', modes: ['tenant'], render: renderSubtenants },
  { id: 'notifications', label: 'Notifications', modes: ['tenant'], render: renderNotifications },
  { id: 'sp-connection', label: 'Connection', modes: ['sp'], render: renderSpConnection },
  { id: 'sp-tenants', label: 'Tenants', modes: ['sp'], render: renderSpTenants, needsSp: true },
  { id: 'sp-subtenants', label: 'Subtenants', modes: ['sp'], render: renderSpSubtenants, needsSp: true },
  { id: 'sp-repos', label: 'Cloud repositories', modes: ['sp'], render: renderSpRepos, needsSp: true },
  { id: 'sp-plans', label: 'Hardware plans', modes: ['sp'], render: renderSpPlans, needsSp: true },
  { id: 'sp-gateways', label: 'Gateways', modes: ['sp'], render: renderSpGateways, needsSp: true },
  { id: 'sp-certificate', label: 'Certificate', modes: ['sp'], render: renderSpCertificate, needsSp: true },
  { id: 'sp-usage', label: 'Usage', modes: ['sp'], render: renderSpUsage, needsSp: true },
  { id: 'sp-recycle', label: 'Recycle bin', modes: ['sp'], render: renderSpRecycleBin, needsSp: true },
  { id: 'sp-maintenance', label: 'Maintenance', modes: ['sp'], render: renderSpMaintenance, needsSp: true },
  { id: 'sp-notifications', label: 'Notifications', modes: ['sp'], render: renderSpNotifications, needsSp: true },
  { id: 'sp-admins', label: 'SP admins', modes: ['sp'], render: renderSpAdmins, needsSp: true },
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

/** The mode a section belongs to first. */
export function modeOfSection(id) {
  const section = SECTIONS.find((s) => s.id === id);
  return section ? section.modes[0] : null;
}
