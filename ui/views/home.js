// Home: the first-run welcome (add a service provider, or try the lab), then the overview
// from core: warnings, quota bars per cloud repository, next scheduled runs, last sessions.

import { overview, labStart } from '../ipc.js';
import { labSpButton } from '../lab.js';
import { h, replaceChildren, button, table, badge, panel, paintBars } from '../dom.js';
import { errorSlot, busy, notice } from '../components.js';
import * as fmt from '../format.js';
import { repoBars } from '../lists.js';

export async function renderHome(container, ctx) {
  const view = await overview(false);
  if (!ctx.current()) return;
  if (view.providers === 0) {
    renderWelcome(container, ctx);
    return;
  }
  const refresh = button('Refresh from providers', { variant: 'secondary', id: 'home-refresh' });
  refresh.addEventListener('click', () => busy(refresh, async () => {
    const fresh = await overview(true);
    fill(fresh);
  }, ctx.showError));
  const body = h('div', { class: 'stack' });
  replaceChildren(container, h('div', { class: 'toolbar' }, refresh), body);

  function fill(v) {
    replaceChildren(body,
      v.notices.length > 0
        ? h('section', { class: 'notices', 'aria-label': 'Warnings', id: 'home-notices' },
          h('h2', { class: 'visually-hidden', text: 'Warnings' }),
          v.notices.map((n) => h('p', { class: `warning warning-${n.kind}`, text: n.message })))
        : h('p', { class: 'all-good', id: 'home-all-good', text: 'No warnings: leases, quotas, certificates and jobs are all fine.' }),
      schedulerNote(v),
      h('div', { class: 'grid-2' },
        panel('Cloud repositories', repoBars(v.repos)),
        panel('Next scheduled runs', table({
          caption: 'Next scheduled runs',
          id: 'home-next-runs',
          columns: [['Job', (j) => j.name], ['Schedule', (j) => j.schedule], ['Next run', (j) => fmt.dateTime(j.next_run_ms), 'when']],
          rows: v.jobs.filter((j) => j.next_run_ms),
          empty: 'No job runs on a schedule. Give a job a schedule to have it run by itself.',
        }))),
      panel('Proven restorable', table({
        caption: 'When each job was last proven restorable',
        id: 'home-proven',
        columns: [
          ['Job', (j) => j.name],
          ['Proven restorable', (j) => h('span', { id: `home-proof-${j.name}`, class: j.proof && j.proof.result === 'failed' ? 'proof proof-failed' : 'proof' }, fmt.proof(j.proof))],
          ['Latest restore test', (j) => (j.proof ? h('span', {}, badge(j.proof.result), ` ${fmt.dateTime(j.proof.tested_ms)}`) : '—')],
        ],
        rows: v.jobs,
        empty: 'No job yet.',
      })),
      panel('Last sessions', table({
        caption: 'Last sessions',
        id: 'home-sessions',
        columns: [
          ['Job', (s) => s.job],
          ['Kind', (s) => s.kind],
          ['Started', (s) => fmt.dateTime(s.started_ms), 'when'],
          ['Result', (s) => badge(s.result)],
          ['Details', (s) => s.message || (s.stats && s.stats.files !== undefined ? `${fmt.counted(s.stats.files, 'file')}, ${fmt.bytes(s.stats.bytes)}` : '')],
        ],
        rows: v.sessions,
        empty: 'Nothing has run yet. Open Backup jobs and choose Run now.',
      })));
    paintBars(body);
  }
  fill(view);
}

/**
 * Who runs the scheduled jobs: said on Home, not buried in a hint. Without the daemon they
 * run only while this console is open, and the note says how to install it.
 */
function schedulerNote(v) {
  if (!v.jobs.some((j) => j.next_run_ms)) return null;
  if (v.daemon_running) return h('p', { class: 'hint', id: 'home-daemon', text: 'The Cloudkeep daemon runs the scheduled jobs, also while this console is closed.' });
  return h('div', { class: 'warning', id: 'home-daemon' },
    h('p', { text: 'Scheduled jobs run only while this console is open. To run them always, install the Cloudkeep daemon’s service:' }),
    h('p', { class: 'mono', text: 'install -D -m 644 packaging/cloudkeep-daemon.service ~/.config/systemd/user/cloudkeep-daemon.service && systemctl --user enable --now cloudkeep-daemon' }),
    h('p', { class: 'hint', text: 'On Windows, run “cloudkeep.exe daemon” at logon with the Task Scheduler.' }));
}

function renderWelcome(container, ctx) {
  ctx.setTitle('Welcome to Cloudkeep');
  const slot = errorSlot();
  const result = h('div', { id: 'lab-result' });
  const lab = button('Try it with a local lab provider', { variant: 'secondary', id: 'welcome-lab' });
  lab.addEventListener('click', () => busy(lab, async () => {
    slot.clear();
    replaceChildren(result, notice('Starting the lab gateway on this computer…'));
    const started = await labStart();
    replaceChildren(result,
      notice(`The lab is running at ${started.lab.address} and is added as service provider “${started.provider.name}”, its certificate pinned.`, { id: 'lab-ready' }),
      repoBars(started.provider.repos.map((r) => ({ ...r, provider: started.provider.name, repo: r.name }))),
      h('p', {}, 'Next: create a backup job that stores its restore points there. To see the service provider’s side too, open the lab as its service provider: its tenants, quotas and recycle bin.'),
      h('div', { class: 'actions' },
        button('Create a backup job', { id: 'welcome-new-job', onClick: () => ctx.navigate('jobs', { view: 'new' }) }),
        labSpButton(ctx, slot)));
    paintBars(result);
  }, (err) => { replaceChildren(result); slot.show(err); }));
  replaceChildren(container,
    h('p', { class: 'lead' }, 'Cloudkeep keeps restore points of this computer in the cloud repositories of your service provider. Start by adding the service provider with the address and account it gave you.'),
    h('div', { class: 'cards' },
      h('div', { class: 'card' },
        h('h2', { text: 'Add a service provider' }),
        h('p', { text: 'You need the gateway’s address, its certificate fingerprint, and your account and password.' }),
        button('Add a service provider', { id: 'welcome-add', onClick: () => ctx.navigate('providers', { view: 'add' }) })),
      h('div', { class: 'card' },
        h('h2', { text: 'Try it first' }),
        h('p', { text: 'Starts a lab gateway on this computer with a tenant account and a cloud repository, so you can try backups and restores without a service provider.' }),
        lab)),
    slot.el, result);
}
