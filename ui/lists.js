// Lists several screens show: sessions as a table, quota bars per cloud repository, and
// tenants or subtenants with their quota use. Views use them; no view imports another.

import { h, table, badge, meter, emptyState } from './dom.js';
import * as fmt from './format.js';

/** Sessions as a table whose rows open the session. */
export function sessionTable(list, ctx, id) {
  return table({
    caption: 'Sessions',
    id,
    columns: [
      ['Session', (s) => h('button', { type: 'button', class: 'link', text: `#${s.id}`, 'aria-label': `Open session ${s.id}`, on: { click: () => ctx.navigate('sessions', { id: s.id }) } })],
      ['Job', (s) => s.job],
      ['Kind', (s) => s.kind],
      ['Started', (s) => fmt.dateTime(s.started_ms), 'when'],
      ['Duration', (s) => fmt.duration((s.finished_ms - s.started_ms) / 1000)],
      ['Result', (s) => badge(s.result)],
      ['Message', (s) => s.message],
    ],
    rows: list,
    empty: 'No sessions yet.',
  });
}

/** Quota use per cloud repository: a bar with used, quota, free and lease. */
export function repoBars(repos) {
  if (repos.length === 0) return emptyState('No cloud repositories yet: add a service provider.');
  return h('ul', { class: 'repo-list' }, repos.map((r) => {
    const name = r.provider ? `${r.provider} / ${r.repo}` : r.name;
    // Core's share (capped at 1) where the overview gives it; a provider's own list has only figures.
    const share = r.used_share ?? fmt.quotaShare(r.used_bytes, r.quota_bytes);
    return h('li', { class: 'repo' },
      h('div', { class: 'repo-head' }, h('strong', { text: name }),
        h('span', { class: 'hint', text: fmt.isUnlimited(r.quota_bytes) ? 'no quota limit' : share >= 1 ? 'full' : `${Math.round(share * 100)} % used` })),
      meter({ share, label: `${name}: quota used`, unlimited: fmt.isUnlimited(r.quota_bytes) }),
      h('p', { class: 'repo-figures' },
        `Used ${fmt.bytes(r.used_bytes)} of ${fmt.quota(r.quota_bytes)} · free ${fmt.quota(r.free_bytes)} · lease: ${fmt.lease(r.lease_until_ms)}`));
  }));
}

/** Tenants or subtenants with quota bars, state and per-row actions. */
export function subtenantTable(views, actions, { caption = 'Subtenants', id = 'subtenants-table', empty = 'No subtenant yet.' } = {}) {
  return table({
    caption,
    id,
    columns: [
      ['Account', (v) => h('div', {}, h('span', { class: 'mono', text: v.tenant.login }),
        v.tenant.managed ? h('p', { class: 'hint cell-message', text: 'a computer of a backup policy' }) : null)],
      ['Quota use', (v) => h('div', {}, v.quotas.map((q) => h('div', { class: 'quota-cell' },
        h('span', { class: 'hint', text: `${q.friendly_name || q.repo_name}: ${fmt.bytes(q.used_bytes)} of ${fmt.quota(q.quota_bytes)}` }),
        meter({ share: fmt.quotaShare(q.used_bytes, q.quota_bytes), label: `${v.tenant.login} on ${q.repo_name}`, unlimited: fmt.isUnlimited(q.quota_bytes) }))))],
      ['Backups', (v) => h('span', { id: `standing-${v.tenant.login}`, class: v.standing && (v.standing.suspicious || v.standing.failed_tests) ? 'standing standing-bad' : 'standing', text: fmt.standing(v.standing) })],
      ['Lease', (v) => fmt.lease(v.tenant.settings.lease_until_ms)],
      ['State', (v) => h('span', { class: `badge badge-${v.tenant.settings.enabled ? 'success' : 'stopped'}`, text: v.tenant.settings.enabled ? 'Enabled' : 'Disabled' })],
      ['Last activity', (v) => fmt.dateTime(v.tenant.last_activity_ms), 'when'],
      ['Actions', (v) => h('div', { class: 'row-actions' }, actions(v))],
    ],
    rows: views,
    empty,
  });
}
