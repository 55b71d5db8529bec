// Backups already at a provider, for a computer that has none of their jobs (the one with the
// console was lost, or this is a new one): which cloud repositories hold restore points, then,
// with the encryption password, the jobs in one, each restored from or adopted as a job of
// this computer. Shown after Add service provider and on each provider's card.

import { foundRepos, foundJobs, foundAdopt } from './ipc.js';
import { h, replaceChildren, button, field, table, panel } from './dom.js';
import { busy, errorBox, errorSlot } from './components.js';
import * as fmt from './format.js';

/**
 * A panel listing `provider`'s repositories that hold backups no job of this computer uses
 * (nothing when there are none). `ctx.navigate` goes to the adopted job or its restore.
 */
export async function foundPanel(provider, ctx) {
  let repos;
  try {
    repos = await foundRepos(provider);
  } catch (err) {
    return panel('Backups already at this provider', errorBox(err));
  }
  const waiting = repos.filter((r) => r.has_backups && r.jobs_here.length === 0);
  if (waiting.length === 0) return null;
  return panel('Backups already at this provider',
    h('p', { class: 'hint', text: 'These cloud repositories hold restore points that no job of this computer uses: backups of a computer that was lost or replaced, or of another one. Open one with its encryption password to restore from it here.' }),
    h('div', { class: 'stack', id: `found-${provider}` }, waiting.map((r) => repoBox(provider, r, ctx))));
}

function repoBox(provider, r, ctx) {
  const id = `${provider}-${r.account ? `${r.account}-` : ''}${r.repo}`.replace(/[^A-Za-z0-9_-]/g, '_');
  const whose = r.account ? ` of policy computer ${r.account}` : '';
  const slot = errorSlot();
  const jobs = h('div', { id: `found-jobs-${id}` });
  const password = r.encrypted
    ? field({ label: `Encryption password of ${r.repo}${whose}`, id: `found-password-${id}`, kind: 'password', autocomplete: 'off', hint: r.account ? 'The backup policy’s encryption password.' : 'The password its jobs were created with (not your account’s password).' })
    : null;
  const open = button(r.encrypted ? 'Open with this password' : 'Show the jobs in it', { variant: 'secondary', id: `found-open-${id}` });
  const secret = () => (password ? password.input.value : null);
  open.addEventListener('click', () => {
    if (password && !password.input.value) { password.setError('Enter the encryption password.'); return; }
    if (password) password.setError(null);
    slot.clear();
    busy(open, async () => {
      const list = await foundJobs(provider, r.repo, r.account, secret());
      replaceChildren(jobs, jobsTable(provider, r, list, secret, ctx, slot));
    }, (err) => slot.show(err));
  });
  return h('section', { class: 'found-repo', 'aria-label': `Backups in ${r.repo}${whose}` },
    h('p', { class: 'result-line', id: `found-repo-${id}` },
      `${r.repo}${whose} holds ${fmt.counted(r.points, 'restore point')}${r.encrypted ? ', encrypted' : ''}${r.newest_ms ? `; the newest of ${fmt.dateTime(r.newest_ms)}` : ''}.`),
    password ? h('div', { class: 'inline-field' }, password.wrap, open) : h('div', { class: 'actions' }, open),
    slot.el, jobs);
}

function jobsTable(provider, found, list, secret, ctx, slot) {
  const { repo, account } = found;
  if (list.length === 0) return h('p', { class: 'hint', text: `${repo} holds no restore point yet.` });
  const note = h('p', { class: 'hint', text: account
    ? 'Restore… keeps the computer’s restore points one click away here; its agent goes on backing it up.'
    : 'Restore… and Adopt both make the job one of this computer (no schedule until you set one; every restore point kept), so its restore points stay one click away.' });
  const adopt = async (btn, j, then) => busy(btn, async () => {
    const job = await foundAdopt(provider, repo, account, j.name, secret());
    await then(job);
  }, (err) => slot.show(err));
  return h('div', {}, note, table({
    caption: `Jobs in ${repo}`,
    id: `found-table-${provider}-${account ? `${account}-` : ''}${repo}`.replace(/[^A-Za-z0-9_-]/g, '_'),
    columns: [
      ['Job', (j) => j.name],
      ['Computer', (j) => j.computers.join(', ')],
      ['Backed up', (j) => h('span', { class: 'mono', text: j.sources.join(', ') })],
      ['Restore points', (j) => `${fmt.counted(j.points, 'point')}, the newest of ${fmt.dateTime(j.newest_ms)} (${fmt.counted(j.files, 'file')}, ${fmt.bytes(j.bytes)})`],
      ['Actions', (j) => (j.here
        ? button('Open', { variant: 'secondary', label: `Open job ${j.here}`, onClick: () => ctx.navigate('jobs', { view: 'job', name: j.here }) })
        : h('div', { class: 'row-actions' },
          button('Restore…', { id: `found-restore-${j.name}`, label: `Restore… from job ${j.name}`, onClick: (e) => adopt(e.target, j, (job) => ctx.navigate('points', { view: 'restore', job: job.name })) }),
          account ? null : button('Adopt as this computer’s job', { variant: 'secondary', id: `found-adopt-${j.name}`, label: `Adopt as this computer’s job: ${j.name}`, onClick: (e) => adopt(e.target, j, (job) => ctx.navigate('jobs', { view: 'job', name: job.name, adopted: true })) })))],
    ],
    rows: list,
  }));
}
