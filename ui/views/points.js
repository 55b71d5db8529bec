// Restore points: by job and exact time with what each changed, compare two points (and
// restore an item from a change), delete under "More actions" (saying whether the provider
// keeps it), and the File restore wizard (restore point → items in the lazy tree, opened at
// the backed-up folders, with checkboxes and search → destination, showing where each item
// will land → on conflict → progress → report listing where everything went, with Copy path
// and Open folder). An image-level point lists its disks and volumes; its files are browsed,
// searched and restored in the same tree (disk → volume → files), and the Restore disk or
// volume wizard writes a volume or a disk onto a device or an image file, or exports a disk
// as VHDX, VHD or VMDK (the target's current contents shown, its path typed to confirm).
// Publish opens a point read-only at a folder for the computer's own tools (an image-level
// point's disks and volumes as raw images and their files; optionally its volumes mounted by
// the OS's own driver); the Published panel shows where each point is published, since when,
// by which process, and unpublishes it. Export writes a point into one portable backup file
// under a password of its own; Open a backup file reads one (on any computer, with no
// provider) and restores from it through the same File restore wizard. Recovery media… leads
// to its own section (views/recovery.js).

import { jobsList, jobGet, providersList, pointsList, pointsRefresh, pointListDir, pointFind, pointDiff, pointChanges, pointDelete, restoreStart, jobRestoreOrder, jobRestoreOrders, pickFolder, openFolder, saveFile, imageTarget, imageRestoreStart, publishFolderHint, publicationsList, pointPublish, pointUnpublish, appInfo, exportFileHint, pointExportStart, backupFileInfo, backupFileOpen, pickFile } from '../ipc.js';
import { validPassword, passwordError, passwordHint } from '../rules.js';
import { h, replaceChildren, button, field, table, panel, radioGroup, selectField, emptyState, badge, facts } from '../dom.js';
import { wizard, runView, busy, errorBox, errorSlot, notice, confirmDialog, copyButton, moreActions } from '../components.js';
import { tree } from '../tree.js';
import * as fmt from '../format.js';

export async function renderPoints(container, ctx) {
  // A backup file needs no job: opened and restored from on any computer.
  if (ctx.params.view === 'file') {
    await renderOpenFile(container, ctx);
    return;
  }
  if (ctx.params.view === 'restore' && String(ctx.params.job || '').startsWith(FILE_KEY)) {
    await renderRestoreWizard(container, ctx, ctx.params.job, ctx.params.point, ctx.params.paths);
    return;
  }
  const { jobs } = await jobsList();
  if (!ctx.current()) return;
  const openFile = button('Open a backup file…', { variant: 'secondary', id: 'points-open-file', onClick: () => ctx.navigate('points', { view: 'file' }) });
  const media = button('Recovery media…', { variant: 'secondary', id: 'points-media', onClick: () => ctx.navigate('recovery', {}) });
  if (jobs.length === 0) {
    replaceChildren(container, emptyState('No job yet, so no restore points. Create a backup job and run it, or restore from a backup file.',
      h('div', { class: 'actions' }, button('New job', { onClick: () => ctx.navigate('jobs', { view: 'new' }) }), openFile, media)));
    return;
  }
  const job = ctx.params.job && jobs.some((j) => j.name === ctx.params.job) ? ctx.params.job : jobs[0].name;
  if (ctx.params.view === 'restore') {
    await renderRestoreWizard(container, ctx, job, ctx.params.point, ctx.params.paths);
    return;
  }
  if (ctx.params.view === 'image') {
    await renderImageWizard(container, ctx, job, ctx.params.point);
    return;
  }
  if (ctx.params.view === 'publish') {
    await renderPublishForm(container, ctx, job, ctx.params.point);
    return;
  }
  if (ctx.params.view === 'export') {
    await renderExportWizard(container, ctx, job, ctx.params.point);
    return;
  }
  const pick = selectField({ label: 'Job', id: 'points-job', options: jobs.map((j) => [j.name, j.name]), value: job });
  pick.input.addEventListener('change', () => ctx.navigate('points', { job: pick.input.value }));
  const refresh = button('Refresh', { variant: 'secondary', id: 'points-refresh' });
  const list = h('div', { id: 'points-list' });
  const compare = h('div', { id: 'points-compare' });
  const published = h('div', { id: 'points-published' });
  replaceChildren(container, h('div', { class: 'toolbar toolbar-fields' }, pick.wrap, refresh, openFile, media), ctx.params.notice ? notice(ctx.params.notice, { id: 'points-notice' }) : null, published, list, compare);
  const [record, providers, about] = await Promise.all([jobGet(job), providersList().catch(() => []), appInfo().catch(() => ({}))]);
  // Publishing needs FUSE: Linux.
  const canPublish = about.os === 'linux';
  const keepNote = deletionNote(record.spec.target, providers);

  async function load() {
    replaceChildren(list, notice('Reading the restore points…'));
    try {
      const points = await pointsList(job);
      if (!ctx.current()) return;
      const sorted = [...points].sort((a, b) => b.time_ms - a.time_ms);
      replaceChildren(list, panel(`Restore points of ${job}`, table({
        caption: `Restore points of ${job}`,
        id: 'points-table',
        columns: [
          ['Date', (p) => h('span', {}, h('time', { datetime: new Date(p.time_ms).toISOString(), title: fmt.relative(p.time_ms), text: fmt.exactTime(p.time_ms) }), h('br'), h('span', { class: 'hint mono', title: 'The point’s id', text: p.short_id })), 'when'],
          ['Contents', (p) => h('span', {}, p.level === 'image' ? diskSummary(p) : h('span', { class: 'nowrap', text: `${fmt.counted(p.files, 'file')}, ${fmt.bytes(p.bytes)}` }), h('br'), h('span', { class: 'hint', text: `from ${p.host}` }), p.warnings ? h('span', {}, ' ', badge('warning')) : null, pointMarks(p))],
          ['Changes', (p) => h('span', { class: 'changes', id: `point-changes-${p.short_id}`, dataset: { point: p.id }, text: '…' })],
          ['Actions', (p) => h('div', { class: 'row-actions' },
            button(p.level === 'image' ? 'Restore files' : 'Browse and restore', { variant: 'secondary', id: `point-restore-${p.short_id}`, label: `${p.level === 'image' ? 'Restore files' : 'Browse and restore'} the point of ${fmt.exactTime(p.time_ms)}`, onClick: () => ctx.navigate('points', { view: 'restore', job, point: p.id }) }),
            p.level === 'image' ? button('Restore or export a disk', { variant: 'secondary', id: `point-image-${p.short_id}`, label: `Restore or export a disk of the point of ${fmt.exactTime(p.time_ms)}`, onClick: () => ctx.navigate('points', { view: 'image', job, point: p.id }) }) : null,
            button('Export to a file', { variant: 'secondary', id: `point-export-${p.short_id}`, label: `Export to a file: the point of ${fmt.exactTime(p.time_ms)}`, onClick: () => ctx.navigate('points', { view: 'export', job, point: p.id }) }),
            canPublish ? button('Publish', { variant: 'secondary', id: `point-publish-${p.short_id}`, label: `Publish the point of ${fmt.exactTime(p.time_ms)} read-only at a folder`, onClick: () => ctx.navigate('points', { view: 'publish', job, point: p.id }) }) : null,
            moreActions({
              id: `point-more-${p.short_id}`,
              label: `for the point of ${fmt.exactTime(p.time_ms)}`,
              note: keepNote,
              actions: [button('Delete this point', { variant: 'danger', id: `point-delete-${p.short_id}`, label: `Delete this point: the point of ${fmt.exactTime(p.time_ms)}`, onClick: (e) => deletePoint(e.target, p) })],
            }))],
        ],
        rows: sorted,
        empty: 'No restore point yet: run the job once.',
      })));
      replaceChildren(compare, sorted.length >= 2 ? comparePanel(job, sorted, ctx) : null);
      showChanges();
    } catch (err) {
      replaceChildren(list, errorBox(err));
    }
  }
  /** What each point changed, filled in once computed (the list does not wait for it). */
  async function showChanges() {
    try {
      const all = await pointChanges(job);
      for (const c of all) {
        const cell = list.querySelector(`.changes[data-point="${c.id}"]`);
        if (cell) cell.textContent = changesText(c.changes);
      }
    } catch {
      for (const cell of list.querySelectorAll('.changes')) cell.textContent = '—';
    }
  }
  async function deletePoint(btn, p) {
    const ok = await confirmDialog({
      title: 'Delete this restore point?',
      message: `The restore point of ${fmt.exactTime(p.time_ms)} (${p.short_id}) is deleted. ${keepNote}`,
      confirmLabel: 'Delete point',
    });
    if (!ok) return;
    await busy(btn, async () => {
      await pointDelete(job, p.id);
      await load();
      list.prepend(notice(`Restore point ${p.short_id} deleted.`, { id: 'point-deleted' }));
    }, ctx.showError);
  }
  /** Every published point of this computer (this job's and others'), with Unpublish. */
  async function loadPublished() {
    if (!canPublish) return;
    try {
      const all = await publicationsList();
      if (!ctx.current()) return;
      replaceChildren(published, all.length === 0 ? null : panel('Published restore points', table({
        caption: 'Published restore points',
        id: 'publications-table',
        columns: [
          ['Where', (p) => h('span', {}, h('span', { class: 'mono', text: p.folder }), ' ', button('Open folder', { variant: 'secondary', label: `Open folder ${p.folder}`, onClick: () => openFolder(p.folder).catch(ctx.showError) }))],
          ['Restore point', (p) => h('span', {}, `${p.job}: `, h('time', { datetime: new Date(p.point_time_ms).toISOString(), text: fmt.exactTime(p.point_time_ms) }), h('br'), h('span', { class: 'hint mono', text: p.short_id }))],
          ['Published for', (p) => h('span', { class: 'publication-age', title: `since ${fmt.exactTime(p.since_ms)}`, text: fmt.duration((Date.now() - p.since_ms) / 1000) }, h('br'), h('span', { class: 'hint', text: p.here ? 'by this console (until it closes)' : `by process ${p.pid}` }))],
          ['Volumes mounted', (p) => p.attached.length === 0 ? '—' : h('span', {}, p.attached.map((a, i) => h('span', { class: 'nowrap', title: a.at }, i ? h('br') : null, `${a.volume} on ${a.device}`)))],
          ['Actions', (p) => button('Unpublish', { variant: 'secondary', id: `unpublish-${p.short_id}`, label: `Unpublish ${p.folder}`, onClick: (e) => unpublish(e.target, p) })],
        ],
        rows: all,
      })));
    } catch (err) {
      replaceChildren(published, errorBox(err));
    }
  }
  async function unpublish(btn, p) {
    await busy(btn, async () => {
      await pointUnpublish(p.folder);
      await loadPublished();
      published.prepend(notice(`${p.folder} unpublished.`, { id: 'point-unpublished' }));
    }, ctx.showError);
  }
  refresh.addEventListener('click', () => busy(refresh, async () => { await pointsRefresh(job); await Promise.all([load(), loadPublished()]); }, ctx.showError));
  await Promise.all([load(), loadPublished()]);
}

/** What an opened backup file's key starts with (a job name never holds a colon). */
const FILE_KEY = 'file:';

/** Export a point into one portable backup file: where, under which password, progress, report. */
async function renderExportWizard(container, ctx, job, pointId) {
  const [points, record] = await Promise.all([pointsList(job), jobGet(job)]);
  if (!ctx.current()) return;
  const p = points.find((x) => x.id === pointId);
  if (!p) {
    replaceChildren(container, emptyState('This restore point is gone.', button('Back to restore points', { onClick: () => ctx.navigate('points', { job }) })));
    return;
  }
  ctx.setTitle(`Export a restore point of ${job}`);
  const encrypted = !!record.spec.encrypted;
  const data = { to: await exportFileHint(job, p.time_ms), password: null, done: null };
  const steps = [
    {
      title: 'Backup file',
      render(body) {
        const to = field({ label: 'File', id: 'export-to', value: data.to, hint: 'A new file: everything this restore point needs, in one file you can keep, move or hand over. An interrupted export goes on where it stopped when started again.' });
        const choose = button('Choose…', { variant: 'secondary', id: 'export-choose' });
        choose.addEventListener('click', async () => {
          const picked = await saveFile('Export the restore point to', baseName(to.input.value) || `${job}.ckb`);
          if (picked) to.input.value = picked;
        });
        body.append(h('p', { text: `The restore point of ${fmt.exactTime(p.time_ms)} (${p.short_id}) of ${job}: ${p.level === 'image' ? diskText(p) : `${fmt.counted(p.files, 'file')}, ${fmt.bytes(p.bytes)}`}.` }), h('div', { class: 'inline-field' }, to.wrap, choose));
        return () => {
          const v = to.input.value.trim();
          if (!(v.startsWith('/') || /^[A-Za-z]:[\\/]/.test(v))) { to.setError('Choose the file with Choose… or type its full path.'); return false; }
          data.to = v;
          return true;
        };
      },
    },
  ];
  if (encrypted) {
    steps.push({
      title: 'Password',
      nextLabel: 'Export',
      render(body) {
        const pw = field({ label: 'Password of the file', id: 'export-password', kind: 'password', autocomplete: 'new-password', hint: passwordHint() });
        const pw2 = field({ label: 'The same password again', id: 'export-password2', kind: 'password', autocomplete: 'new-password' });
        body.append(h('p', { text: 'The file opens with this password alone — not the job’s. Keep it with the file’s owner: without it nobody, you included, can read the file.' }), pw.wrap, pw2.wrap);
        return () => {
          if (!validPassword(pw.input.value)) { pw.setError(passwordError()); return false; }
          pw.setError(null);
          if (pw2.input.value !== pw.input.value) { pw2.setError('The two passwords differ.'); return false; }
          data.password = pw.input.value;
          return true;
        };
      },
    });
  }
  steps.push({
    title: 'Progress',
    noBack: true,
    hideCancel: true,
    nextLabel: 'See the result',
    render(body, d, wz) {
      if (!encrypted) body.append(notice('The job is not encrypted, so neither is the file: keep it where only its owner can read it.'));
      const view = runView({ id: 'export-progress', title: 'Export' });
      body.append(view.el);
      wz.setNextEnabled(false);
      pointExportStart({ job, point: p.id, to: data.to, password: data.password }, view.handle)
        .catch((err) => { body.append(errorBox(err)); wz.setNextEnabled(true); });
      view.done.then((done) => { data.done = done; wz.setNextEnabled(true); wz.next(); });
      return undefined;
    },
  });
  steps.push({
    title: 'Result',
    final: true,
    render(body) {
      const done = data.done;
      if (!done || done.error) {
        body.append(errorBox({ kind: 'failed', message: done ? done.error : 'The export did not start.' }, { id: 'export-result' }));
        return;
      }
      const st = done.session.stats || {};
      const folder = parentOf(data.to);
      body.append(
        h('p', { id: 'export-result', role: 'status', text: `Exported to ${data.to} (${fmt.bytes(st.bytes || 0)}).` }),
        h('p', { class: 'hint', text: encrypted ? 'It opens with its own password, on any computer, with Open a backup file or `cloudkeep restore files --from-file`.' : 'It opens on any computer with Open a backup file or `cloudkeep restore files --from-file`.' }),
        h('div', { class: 'actions' }, copyButton(() => data.to, { id: 'export-copy', label: `of ${data.to}`, caption: 'Copy path' }), button('Open folder', { variant: 'secondary', id: 'export-open-folder', label: `Open folder ${folder}`, onClick: () => openFolder(folder).catch(ctx.showError) })));
    },
  });
  const w = wizard({
    id: 'export',
    title: 'Export to a backup file',
    data,
    onCancel: () => ctx.navigate('points', { job }),
    onFinish: () => ctx.navigate('points', { job }),
    steps,
  });
  replaceChildren(container, w.root);
}

/** An image-level point's disks in a few words. */
function diskText(p) {
  return p.disks.map((d) => `${d.path} (${fmt.bytes(d.layout.size)})`).join(', ');
}

/** Open a backup file: choose it, see what it holds, type its password, restore from it. */
async function renderOpenFile(container, ctx) {
  ctx.setTitle('Open a backup file');
  const path = field({ label: 'Backup file', id: 'file-path', hint: 'A file made by Export to a file (or `cloudkeep points export`). Nothing is needed from a provider.' });
  const browse = button('Browse…', { variant: 'secondary', id: 'file-browse' });
  browse.addEventListener('click', async () => {
    const picked = await pickFile('Open a backup file', ['ckb']);
    if (picked) path.input.value = picked;
  });
  const read = button('Read the file', { id: 'file-read' });
  const about = h('div', { id: 'file-about' });
  const errors = errorSlot();
  read.addEventListener('click', () => busy(read, async () => {
    errors.clear();
    replaceChildren(about);
    const info = await backupFileInfo(path.input.value);
    const pw = info.encrypted ? field({ label: 'Password of the file', id: 'file-password', kind: 'password', autocomplete: 'current-password', hint: 'The password chosen when it was exported (not the job’s).' }) : null;
    const open = button('Open and restore…', { id: 'file-open' });
    open.addEventListener('click', () => busy(open, async () => {
      errors.clear();
      const opened = await backupFileOpen(path.input.value, pw ? pw.input.value : null);
      ctx.navigate('points', { view: 'restore', job: opened.key, point: opened.point.id });
    }, (err) => errors.show(err)));
    const what = facts([
      ['Restore point', `${fmt.exactTime(Math.floor(info.point_time_ns / 1e6))} · ${info.source_point.slice(0, 12)}`, 'file-point'],
      ['Job', `${info.job} on ${info.host}`, 'file-job'],
      ['Contents', `${info.image ? 'disks and volumes (image level)' : 'files and folders'}, ${fmt.bytes(info.stored_bytes)} stored`],
      ['Encrypted', info.encrypted ? 'yes: its password opens it' : 'no'],
    ]);
    replaceChildren(about, panel('What the file holds', what,
    pw ? pw.wrap : null, h('div', { class: 'actions' }, open)));
  }, (err) => errors.show(err)));
  replaceChildren(container, panel('Open a backup file', h('div', { class: 'inline-field' }, path.wrap, browse), h('div', { class: 'actions' }, button('Cancel', { variant: 'secondary', id: 'file-cancel', onClick: () => ctx.navigate('points', {}) }), read), errors.el), about);
}

/** Publish a point read-only at a folder: where, and (image-level) whether to mount volumes. */
async function renderPublishForm(container, ctx, job, pointId) {
  const points = await pointsList(job);
  if (!ctx.current()) return;
  const p = points.find((x) => x.id === pointId);
  if (!p) {
    replaceChildren(container, emptyState('This restore point is gone.', button('Back to restore points', { onClick: () => ctx.navigate('points', { job }) })));
    return;
  }
  ctx.setTitle(`Publish a restore point of ${job}`);
  const folder = field({ label: 'Folder', id: 'publish-folder', value: await publishFolderHint(job, p.id), hint: 'An empty folder (created if missing). Its contents show the point, read-only, until you unpublish it or close the console.' });
  const browse = button('Browse…', { variant: 'secondary', id: 'publish-browse' });
  browse.addEventListener('click', async () => {
    const picked = await pickFolder('Publish the restore point in this folder');
    if (picked) folder.input.value = picked;
  });
  const attach = p.level === 'image'
    ? field({ label: 'Also mount each volume with this computer’s own file-system driver', id: 'publish-attach', kind: 'checkbox', hint: 'Applications then open its files as on a disk. Needs administrator rights (loop devices).' })
    : null;
  const errors = errorSlot();
  const go = button('Publish', { id: 'publish-go' });
  const cancel = button('Cancel', { variant: 'secondary', id: 'publish-cancel', onClick: () => ctx.navigate('points', { job }) });
  go.addEventListener('click', () => busy(go, async () => {
    errors.clear();
    const view = await pointPublish(job, p.id, folder.input.value, attach ? attach.input.checked : false);
    const missed = view.not_attached.length ? ` Not mounted by this computer’s driver: ${view.not_attached.join('; ')}.` : '';
    ctx.navigate('points', { job, notice: `Restore point ${view.short_id} published read-only at ${view.folder}.${missed}` });
  }, (err) => errors.show(err)));
  replaceChildren(container, panel(`Publish the restore point of ${fmt.exactTime(p.time_ms)}`,
    h('p', { text: p.level === 'image'
      ? 'Its disks and volumes appear as raw image files (for tools such as fsck or a virtual machine), and each volume’s files in a folder of its own. Nothing in it can be changed, and nothing is restored.'
      : 'Its files and folders appear as they were backed up, for your own tools and applications. Nothing in it can be changed, and nothing is restored.' }),
    h('div', { class: 'inline-field' }, folder.wrap, browse),
    attach ? attach.wrap : null,
    errors.el,
    h('div', { class: 'actions' }, cancel, go)));
}

/** An image-level point's disks, each with its volumes (name, file system, size, use). */
function diskSummary(p) {
  return h('ul', { class: 'disks', id: `point-disks-${p.short_id}`, 'aria-label': 'Disks and volumes' }, p.disks.map((d) => {
    const name = d.path.split('/').filter(Boolean).pop() || d.path;
    return h('li', {}, h('span', { class: 'nowrap' }, h('strong', { text: name }), ` ${fmt.bytes(d.layout.size)}`),
      h('ul', { class: 'volumes' }, d.layout.partitions.map((part) => {
        const rec = (d.volumes || []).find((v) => v.number === part.number);
        const fsys = part.filesystem ? `${part.filesystem.kind}${part.filesystem.label ? ` “${part.filesystem.label}”` : ''}` : 'unknown';
        const used = rec && rec.used != null ? `, ${fmt.bytes(rec.used)} used` : '';
        return h('li', { class: 'volume', dataset: { volume: volumeName(d, part) } }, h('span', { class: 'mono', text: volumeName(d, part) }), ` ${fsys}, ${fmt.bytes(part.size)}${used}`);
      })));
  }));
}

/** A volume's name as the tree shows it (`sda1`, `loop0p1`; the disk itself without a table). */
function volumeName(disk, part) {
  const base = disk.path.split('/').filter(Boolean).pop() || disk.path;
  if (disk.layout.table === 'none') return base;
  return /\d$/.test(base) ? `${base}p${part.number}` : `${base}${part.number}`;
}

/** `3 added, 1 changed` (items; the kinds that happened); a job's first point has nothing to compare with. */
function changesText(c) {
  if (!c) return 'first point';
  const parts = [[c.added, 'added'], [c.changed, 'changed'], [c.removed, 'removed']].filter(([n]) => n > 0);
  return parts.length ? parts.map(([n, what]) => `${fmt.count(n)} ${what}`).join(', ') : 'nothing changed';
}

/** What deleting a point of a job with `target` means: whether the provider keeps it. */
export function deletionNote(target, providers) {
  if (!target || target.kind !== 'provider') {
    return 'Deleting is final: a folder repository has no recycle bin, and the point’s space comes back when the job next compacts its repository.';
  }
  const repo = providers.find((p) => p.name === target.provider)?.repos.find((r) => r.name === target.repo);
  const days = repo ? repo.keep_deleted_days : undefined;
  if (days === undefined || days === null) {
    return 'If your provider gives you insider protection, a deleted point stays in its recycle bin for a while, where only the provider can bring it back; otherwise deleting is final.';
  }
  if (days > 0) return `Insider protection: your provider keeps a deleted point ${fmt.counted(days, 'day')} in its recycle bin, where only the provider can bring it back.`;
  return 'Deleting is final: your provider keeps no deleted points (no insider protection).';
}

/** A point as Compare's lists name it: its exact time and id, short enough never to be cut off. */
function pointLabel(p) {
  return `${fmt.exactTime(p.time_ms)} · ${p.short_id}`;
}

function comparePanel(job, points, ctx) {
  const options = points.map((p) => [p.id, pointLabel(p)]);
  const from = selectField({ label: 'Older point', id: 'compare-from', options, value: points[1].id });
  const to = selectField({ label: 'Newer point', id: 'compare-to', options, value: points[0].id });
  const go = button('Compare', { variant: 'secondary', id: 'compare-go' });
  const out = h('div', { id: 'compare-result' });
  go.addEventListener('click', () => busy(go, async () => {
    const older = from.input.value;
    const newer = to.input.value;
    const changes = await pointDiff(job, older, newer);
    const shown = changes.slice(0, 1000);
    const counts = { added: 0, removed: 0, changed: 0 };
    for (const c of changes) counts[c.kind] += 1;
    // A removed item is restored from the older point; anything else from the newer one.
    const restore = (c) => {
      const point = c.kind === 'removed' ? older : newer;
      const which = c.kind === 'removed' ? 'older' : 'newer';
      return button('Restore', { variant: 'secondary', label: `Restore ${c.path} from the ${which} point`, onClick: () => ctx.navigate('points', { view: 'restore', job, point, paths: [c.path] }) });
    };
    replaceChildren(out,
      h('p', { id: 'compare-summary', text: changes.length === 0 ? 'The two points hold the same files.' : `${counts.added} added, ${counts.changed} changed, ${counts.removed} removed${changes.length > shown.length ? ` (first ${shown.length} shown)` : ''}.` }),
      changes.length ? table({ caption: 'Changes between the two points', id: 'compare-table', columns: [['Change', (c) => c.kind], ['Path', (c) => h('span', { class: 'mono', text: c.path })], ['Actions', restore]], rows: shown }) : null);
  }, (err) => replaceChildren(out, errorBox(err))));
  return panel('Compare two restore points', h('div', { class: 'grid-2' }, from.wrap, to.wrap), h('div', { class: 'actions' }, go), out);
}

async function renderRestoreWizard(container, ctx, job, pointId, paths) {
  // `job` may be an opened backup file's key: no job record, back to the screen after.
  const fromFile = job.startsWith(FILE_KEY);
  const [points, record] = await Promise.all([pointsList(job).then((l) => l.sort((a, b) => b.time_ms - a.time_ms)), fromFile ? { spec: {} } : jobGet(job)]);
  if (!ctx.current()) return;
  ctx.setTitle(fromFile ? `Restore from the backup file ${job.slice(FILE_KEY.length)}` : `Restore from ${job}`);
  const back = fromFile ? {} : { job };
  // A policy's computer: its own paths are on that computer, so "where they came from" is a
  // restore its agent carries out there — never this computer's same paths.
  const computer = record.spec.agent ? record.spec.agent.computer : null;
  // Found on a new computer, its policy is not here: no agent to order; restored here only.
  const canOrder = !!computer && !!record.spec.agent.policy_id;
  const data = { point: pointId || (points[0] && points[0].id), selected: new Set(paths || []), whole: false, to: null, onComputer: canOrder, conflict: 'keep-both', report: null, session: null, error: null, order: null };
  const w = wizard({
    id: 'restore',
    title: 'Restore',
    data,
    onCancel: () => ctx.navigate('points', back),
    onFinish: () => ctx.navigate('points', back),
    steps: [
      {
        title: 'Restore point',
        render(body) {
          if (points.length === 0) {
            body.append(emptyState('This job has no restore point yet.'));
            return () => false;
          }
          const g = radioGroup({ legend: 'Restore from', name: 'restore-point', value: data.point, options: points.map((p) => [p.id, fmt.dateTime(p.time_ms), `${p.host} · ${fmt.counted(p.files, 'file')} · ${fmt.bytes(p.bytes)} · ${p.short_id}`]) });
          body.append(g.wrap);
          return () => {
            const chosen = g.value();
            if (chosen !== data.point) data.selected.clear();
            data.point = chosen;
            return true;
          };
        },
      },
      { title: 'Items', render: (body) => itemsStep(body, job, data, points.find((p) => p.id === data.point)) },
      {
        title: 'Destination',
        render(body) {
          if (computer) return computerDestination(body, data, computer, canOrder);
          const imagePoint = (points.find((p) => p.id === data.point) || {}).level === 'image';
          const destinations = [['original', 'The original location', 'Where the items were when they were backed up.'], ['folder', 'Another folder', data.whole ? 'Everything keeps its full path below it.' : 'Each selected item goes straight into it by its own name; the folders above it are not recreated.']];
          // Files from inside a volume image have no other place here than a folder.
          const g = radioGroup({ legend: 'Restore to', name: 'restore-dest', value: imagePoint || data.to !== null ? 'folder' : 'original', options: imagePoint ? destinations.slice(1) : destinations });
          const path = field({ label: 'Folder', id: 'restore-folder', value: data.to || '', hint: 'A full path; choose Browse to pick it.' });
          const preview = h('div', { id: 'restore-preview', 'aria-live': 'polite' });
          const browse = button('Browse…', { variant: 'secondary', id: 'restore-browse' });
          browse.addEventListener('click', async () => {
            const picked = await pickFolder('Restore into this folder');
            if (picked) {
              path.input.value = picked;
              g.inputs.find((i) => i.value === 'folder').checked = true;
              sync();
            }
          });
          const folderRow = h('div', { class: 'inline-field sub' }, path.wrap, browse);
          const sync = () => {
            folderRow.hidden = g.value() !== 'folder';
            const v = path.input.value.trim();
            replaceChildren(preview, landingPreview(data, g.value() === 'original' ? null : v, points.find((p) => p.id === data.point)));
          };
          g.inputs.forEach((i) => i.addEventListener('change', sync));
          path.input.addEventListener('input', sync);
          body.append(g.wrap, folderRow, preview);
          sync();
          return () => {
            if (g.value() === 'original') { data.to = null; return true; }
            const v = path.input.value.trim();
            if (!(v.startsWith('/') || /^[A-Za-z]:[\\/]/.test(v))) { path.setError('Choose the folder with Browse or type its full path.'); return false; }
            data.to = v;
            return true;
          };
        },
      },
      {
        title: 'On conflict',
        nextLabel: 'Start restore',
        render(body) {
          const g = radioGroup({
            legend: 'When a file of the same name is already there',
            name: 'restore-conflict',
            value: data.conflict,
            options: [
              ['keep-both', 'Keep both', 'The restored file gets a new name next to the existing one.'],
              ['skip', 'Skip', 'The existing file stays; the restored one is not written.'],
              ['overwrite', 'Overwrite', 'The existing file is replaced by the restored one.'],
            ],
          });
          const p = points.find((x) => x.id === data.point);
          const where = data.onComputer ? `${data.to || 'where they came from'} on ${computer}, by its agent on its next cycle` : (data.to || 'the original location');
          body.append(g.wrap, h('p', { class: 'hint', id: 'restore-summary', text: `Restore ${data.whole ? 'the whole restore point' : fmt.counted(data.selected.size, 'selected item')} of ${p ? fmt.exactTime(p.time_ms) : data.point} to ${where}.` }));
          return () => { data.conflict = g.value(); return true; };
        },
      },
      {
        title: 'Progress',
        noBack: true,
        hideCancel: true,
        nextLabel: 'See the report',
        render(body, d, wz) {
          if (data.onComputer) return orderProgress(body, data, wz, job, computer, ctx);
          const view = runView({ id: 'restore-progress', title: 'Restore' });
          body.append(view.el);
          wz.setNextEnabled(false);
          restoreStart({ job, point: data.point, paths: data.whole ? [] : [...data.selected], to: data.to, conflict: data.conflict }, view.handle)
            .catch((err) => { data.error = err; body.append(errorBox(err)); wz.setNextEnabled(true); });
          view.done.then((done) => {
            data.report = done.restore;
            data.session = done.session;
            data.error = done.error ? { kind: 'failed', message: done.error } : null;
            wz.setNextEnabled(true);
            wz.next();
          });
          return undefined;
        },
      },
      { title: 'Report', final: true, render: (body) => reportStep(body, data) },
    ],
  });
  replaceChildren(container, w.root);
}

function itemsStep(body, job, data, point) {
  const count = h('p', { class: 'hint', id: 'restore-count', role: 'status' });
  const whole = field({ label: 'Restore the whole restore point', id: 'restore-whole', kind: 'checkbox', value: data.whole });
  // An image point's whole is its disks: restored as disks (Restore or export a disk).
  whole.wrap.hidden = !!point && point.level === 'image';
  const sync = () => {
    count.textContent = data.whole ? 'Everything in the restore point is restored.' : `${fmt.counted(data.selected.size, 'item')} selected.`;
    browser.el.hidden = data.whole;
    searchBox.hidden = data.whole;
  };
  const browser = tree({
    load: (path, offset, limit) => pointListDir(job, data.point, path, offset, limit),
    selected: data.selected,
    onChange: () => sync(),
    label: 'Items in the restore point',
  });
  const pattern = field({ label: 'Find by name', id: 'restore-find', hint: 'A word, or a pattern such as *.pdf.' });
  const find = button('Search', { variant: 'secondary', id: 'restore-find-go' });
  const hits = h('div', { id: 'restore-hits' });
  const searchBox = h('div', { class: 'search' }, h('div', { class: 'inline-field' }, pattern.wrap, find), hits);
  const slot = errorSlot();
  async function search() {
    const text = pattern.input.value.trim();
    if (!text) { pattern.setError('Type a name or a pattern.'); return; }
    pattern.setError(null);
    await busy(find, async () => {
      const found = await pointFind(job, data.point, text);
      replaceChildren(hits, found.length === 0 ? h('p', { class: 'hint', text: `Nothing matches “${text}”.` }) : h('ul', { class: 'hits', 'aria-label': 'Search results' }, found.map((f, i) => {
        const id = `hit-${i}`;
        const box = h('input', { type: 'checkbox', id, checked: data.selected.has(f.path), dataset: { path: f.path } });
        box.addEventListener('change', () => {
          if (box.checked) data.selected.add(f.path); else data.selected.delete(f.path);
          browser.refreshChecks();
          sync();
        });
        return h('li', {}, box, h('label', { for: id, class: 'mono', text: f.path }), h('span', { class: 'node-meta', text: f.kind === 'Dir' ? 'folder' : fmt.bytes(f.size) }));
      })));
    }, (err) => slot.show(err));
  }
  find.addEventListener('click', search);
  pattern.input.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); search(); } });
  whole.input.addEventListener('change', () => { data.whole = whole.input.checked; sync(); });
  body.append(whole.wrap, count, searchBox, slot.el, browser.el);
  // The tree opens where the backed-up items are, not at the top of the disk.
  browser.reload(point && point.level !== 'image' ? point.paths : ['/']);
  sync();
  return () => {
    if (!data.whole && data.selected.size === 0) throw { kind: 'invalid', message: 'Tick the files or folders to restore, or tick “Restore the whole restore point”.' };
    return true;
  };
}

/** Where a policy computer's items go: on that computer (by its agent), or here. */
function computerDestination(body, data, computer, canOrder) {
  const value = !data.onComputer ? 'folder' : data.to ? 'computer-folder' : 'computer';
  const here = ['folder', 'A folder on this computer', 'Restored here now; the items keep their names below it.'];
  const g = radioGroup({ legend: 'Restore to', name: 'restore-dest', value, options: canOrder ? [
    ['computer', `${computer}, where they came from`, `Its agent restores them on its next cycle, from ${computer}’s own restore points.`],
    ['computer-folder', `A folder on ${computer}`, 'A full path on that computer; its agent restores there.'],
    here,
  ] : [here], hint: canOrder ? undefined : `The backup policy of ${computer} is not on this computer, so its agent cannot be asked: restore here, into a folder.` });
  const path = field({ label: 'Folder', id: 'restore-folder', value: data.to || '', hint: 'A full path.' });
  const browse = button('Browse…', { variant: 'secondary', id: 'restore-browse' });
  browse.addEventListener('click', async () => {
    const picked = await pickFolder('Restore into this folder');
    if (picked) path.input.value = picked;
  });
  const folderRow = h('div', { class: 'inline-field sub' }, path.wrap, browse);
  const sync = () => { folderRow.hidden = g.value() === 'computer'; browse.hidden = g.value() !== 'folder'; };
  g.inputs.forEach((i) => i.addEventListener('change', sync));
  body.append(g.wrap, folderRow);
  sync();
  return () => {
    data.onComputer = g.value() !== 'folder';
    if (g.value() === 'computer') { data.to = null; return true; }
    const v = path.input.value.trim();
    if (!(v.startsWith('/') || /^[A-Za-z]:[\\/]/.test(v))) { path.setError('Type the full path of the folder.'); return false; }
    data.to = v;
    return true;
  };
}

/** A restore ordered for a policy computer: queued, then its agent's progress, polled. */
function orderProgress(body, data, wz, job, computer, ctx) {
  const state = h('p', { id: 'restore-order-state', role: 'status', text: 'Ordering…' });
  body.append(state);
  wz.setNextEnabled(false);
  const words = { queued: `Queued: the agent of ${computer} carries it out on its next cycle.`, running: `Running on ${computer}…`, done: `Done on ${computer}.`, failed: `Failed on ${computer}.` };
  const show = (o) => { data.order = o; state.textContent = `${words[o.state] || o.state}${o.message ? ` ${o.message}` : ''}`; };
  jobRestoreOrder(job, { point: data.point, paths: data.whole ? [] : [...data.selected], to: data.to, conflict: data.conflict })
    .then(async (order) => {
      show(order);
      while (ctx.current() && !['done', 'failed'].includes(data.order.state)) {
        await new Promise((r) => { setTimeout(r, 2000); });
        const now = (await jobRestoreOrders(job)).find((o) => o.id === order.id);
        if (now) show(now);
      }
      wz.setNextEnabled(true);
    })
    .catch((err) => { data.error = err; body.append(errorBox(err)); wz.setNextEnabled(true); });
  return undefined;
}

function reportStep(body, data) {
  if (data.onComputer) {
    const o = data.order;
    body.append(o ? h('p', { class: 'result-line', id: 'restore-result' }, badge(o.state === 'done' ? 'success' : 'failed'), ` ${o.message}`) : errorBox(data.error || { kind: 'failed', message: 'The restore was not ordered.' }));
    return;
  }
  const r = data.report;
  if (!r) {
    body.append(errorBox(data.error || { kind: 'failed', message: 'The restore did not finish.' }));
    return;
  }
  const placed = r.placed || [];
  const first = placed[0];
  const folder = first ? (first.folder ? first.to : parentOf(first.to)) : data.to || '/';
  const reasons = (list) => h('ul', { class: 'reasons' }, list.map((w) => h('li', {}, h('span', { class: 'mono', text: w.path }), `: ${w.message}`)));
  const where = placed.length ? panel('Where the items are now', h('ul', { class: 'placed', id: 'restore-placed' }, placed.map((p, i) => {
    const path = h('span', { class: 'mono', id: `restore-placed-${i}`, text: p.to });
    return h('li', {}, h('span', { class: 'hint', text: p.from === '/' ? 'Everything, with full paths, in' : `${p.from} is now` }), path,
      copyButton(() => p.to, { id: `restore-copy-${i}`, caption: 'Copy path', label: `of ${p.to}`, select: path }));
  }))) : null;
  body.append(...[
    h('p', { class: 'result-line', id: 'restore-result' }, badge(data.session ? data.session.result : 'success'),
      ` Restored ${fmt.counted(r.files, 'file')} and ${fmt.counted(r.dirs, 'folder')}, ${fmt.bytes(r.bytes)}; ${r.skipped.length} skipped, ${r.failed.length} failed.`),
    data.error ? errorBox(data.error) : null,
    where,
    r.skipped.length ? panel('Skipped', reasons(r.skipped)) : null,
    r.failed.length ? panel('Failed', reasons(r.failed)) : null,
    r.renamed && r.renamed.length ? panel('Restored under another name', reasons(r.renamed)) : null,
    h('div', { class: 'actions' }, button('Open folder', { variant: 'secondary', id: 'restore-open-folder', label: `Open folder ${folder}`, onClick: () => openFolder(folder).catch((e) => body.append(errorBox(e))) })),
  ].filter(Boolean));
}

/** Where the chosen items will land, shown before Start: `to` null is where they came from. */
function landingPreview(data, to, point) {
  const lines = [];
  if (data.whole) {
    const example = point && point.paths[0];
    if (to === null) lines.push(['Everything', 'back where it was']);
    else if (to) lines.push([example || 'Everything', example ? joinPath(to, example) : `${to}, with full paths`]);
  } else {
    for (const from of [...data.selected].slice(0, 5)) {
      if (to === null) lines.push([from, from]);
      else if (to) lines.push([from, joinPath(to, baseName(from))]);
    }
  }
  if (lines.length === 0) return null;
  const more = data.whole ? 0 : data.selected.size - lines.length;
  return h('div', { class: 'preview' }, h('p', { class: 'field-label', text: 'Where the items will be' }),
    h('ul', { class: 'placed' }, lines.map(([from, dest]) => h('li', {}, h('span', { class: 'mono', text: from }), h('span', { 'aria-hidden': 'true', text: '→' }), h('span', { class: 'visually-hidden', text: 'goes to' }), h('span', { class: 'mono', text: dest })))),
    more > 0 ? h('p', { class: 'hint', text: `and ${fmt.counted(more, 'more item')} the same way.` }) : null);
}

function baseName(path) {
  const parts = path.split('/').filter(Boolean);
  return parts.length ? parts[parts.length - 1] : '';
}

function joinPath(folder, rest) {
  const sep = folder.includes('\\') && !folder.includes('/') ? '\\' : '/';
  return `${folder.replace(/[\\/]+$/, '')}${sep}${rest.replace(/^[\\/]+/, '')}`;
}

function parentOf(path) {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

/** The Restore disk or volume wizard: what (a disk or one volume) → where (a device or a
 * file, and a disk's format) → the target as it is now, confirmed by typing its path →
 * progress → report. */
async function renderImageWizard(container, ctx, job, pointId) {
  const points = await pointsList(job);
  if (!ctx.current()) return;
  const point = points.find((p) => p.id === pointId);
  if (!point || point.level !== 'image') {
    replaceChildren(container, emptyState('This restore point holds files, not disks: restore files from it instead.'));
    return;
  }
  ctx.setTitle(`Restore a disk or volume from ${job}`);
  const choices = point.disks.flatMap((d) => {
    const name = d.path.split('/').filter(Boolean).pop() || d.path;
    return [[JSON.stringify([name, null]), `The whole disk ${name}`, `${fmt.bytes(d.layout.size)}, ${d.layout.partitions.length} volumes: partition table and every volume`]]
      .concat(d.layout.partitions.map((part) => [JSON.stringify([name, part.number]), `Volume ${volumeName(d, part)}`,
        `${part.filesystem ? part.filesystem.kind : 'unknown file system'}${part.filesystem && part.filesystem.label ? ` “${part.filesystem.label}”` : ''}, ${fmt.bytes(part.size)}`]));
  });
  const data = { what: choices[0][0], format: 'raw', to: '', target: null, confirm: '', report: null, session: null, error: null };
  const chosen = () => JSON.parse(data.what);
  const w = wizard({
    id: 'image-restore',
    title: 'Restore or export a disk',
    data,
    onCancel: () => ctx.navigate('points', { job }),
    onFinish: () => ctx.navigate('points', { job }),
    steps: [
      {
        title: 'What',
        render(body) {
          const g = radioGroup({ legend: `From the point of ${fmt.exactTime(point.time_ms)}`, name: 'image-what', value: data.what, options: choices });
          body.append(g.wrap);
          return () => { data.what = g.value(); return true; };
        },
      },
      {
        title: 'Where',
        render(body) {
          const [, volume] = chosen();
          const formats = volume === null
            ? [['raw', 'Onto a disk, or a raw image file', 'A device such as /dev/sdc, or a .img file. Onto a larger disk the last partition grows to fill it.'],
              ['vhdx', 'VHDX file (Hyper-V)'], ['vhd', 'VHD file, dynamic'], ['vhd-fixed', 'VHD file, fixed'], ['vmdk', 'VMDK file (VMware)']]
            : [['raw', 'Onto a volume, or a raw image file', 'A device such as /dev/sdc1, or a .img file.']];
          const g = radioGroup({ legend: 'Write it as', name: 'image-format', value: data.format, options: formats });
          const path = field({ label: 'Device or file', id: 'image-to', value: data.to, hint: 'A full path. A device must not be in use; an existing file is replaced.' });
          const browse = button('Choose file…', { variant: 'secondary', id: 'image-browse' });
          browse.addEventListener('click', async () => {
            const ext = g.value() === 'raw' ? 'img' : g.value().replace('-fixed', '');
            const picked = await saveFile('Write the disk to this file', `${chosen()[0]}.${ext}`);
            if (picked) path.input.value = picked;
          });
          body.append(g.wrap, h('div', { class: 'inline-field' }, path.wrap, browse));
          return async () => {
            const v = path.input.value.trim();
            if (!(v.startsWith('/') || /^[A-Za-z]:[\\/]/.test(v))) { path.setError('Give the full path of the device or file.'); return false; }
            data.format = g.value();
            data.to = v;
            try {
              data.target = await imageTarget(v);
            } catch (e) {
              path.setError(e.message);
              return false;
            }
            return true;
          };
        },
      },
      {
        title: 'Confirm',
        nextLabel: 'Start',
        render(body) {
          const t = data.target;
          const [disk, volume] = chosen();
          const what = volume === null ? `the disk ${disk}` : `volume ${volume} of ${disk}`;
          const facts = [h('p', { id: 'image-summary', text: `Write ${what}${data.format === 'raw' ? '' : ` as ${data.format.toUpperCase()}`} to ${t.path}.` })];
          if (t.mounts.length) {
            facts.push(errorBox({ kind: 'invalid', message: `${t.path} is in use: mounted at ${t.mounts.join(', ')}. Unmount it first; nothing is written while it is in use.` }));
          }
          if (!t.exists) {
            facts.push(h('p', { class: 'hint', id: 'image-target-state', text: 'A new file is created.' }));
            body.append(...facts);
            return () => t.mounts.length === 0;
          }
          const contents = t.contents
            ? h('ul', { id: 'image-target-contents' }, [h('li', { text: `${t.contents.table === 'none' ? 'no partition table' : Object.keys(t.contents.table)[0].toUpperCase()} on ${fmt.bytes(t.size)}` })]
              .concat(t.contents.partitions.map((part) => h('li', { class: 'mono', text: `${part.number}: ${part.filesystem ? part.filesystem.kind : 'unknown'}${part.filesystem && part.filesystem.label ? ` “${part.filesystem.label}”` : ''}, ${fmt.bytes(part.size)}` }))))
            : h('p', { id: 'image-target-contents', class: 'hint', text: `${fmt.bytes(t.size)}; no partition table or file system this console knows.` });
          const confirm = field({ label: `Type ${t.path} to overwrite it`, id: 'image-confirm', value: '', hint: 'Everything on it now is replaced.' });
          facts.push(panel(`${t.is_device ? 'The device' : 'The file'} holds now`, contents), confirm.wrap);
          body.append(...facts);
          return () => {
            if (t.mounts.length) return false;
            if (confirm.input.value.trim() !== t.path) { confirm.setError(`Type ${t.path} exactly to confirm.`); return false; }
            data.confirm = confirm.input.value.trim();
            return true;
          };
        },
      },
      {
        title: 'Progress',
        noBack: true,
        hideCancel: true,
        nextLabel: 'See the report',
        render(body, d, wz) {
          const [disk, volume] = chosen();
          const view = runView({ id: 'image-progress', title: 'Restore' });
          body.append(view.el);
          wz.setNextEnabled(false);
          imageRestoreStart({ job, point: point.id, disk, volume, format: data.format, to: data.to, confirm: data.confirm }, view.handle)
            .catch((err) => { data.error = err; body.append(errorBox(err)); wz.setNextEnabled(true); });
          view.done.then((done) => {
            data.report = done.restore;
            data.session = done.session;
            data.error = done.error ? { kind: 'failed', message: done.error } : null;
            wz.setNextEnabled(true);
            wz.next();
          });
          return undefined;
        },
      },
      {
        title: 'Report',
        final: true,
        render(body) {
          const r = data.report;
          if (!r) {
            body.append(errorBox(data.error || { kind: 'failed', message: 'The restore did not finish.' }));
            return;
          }
          const placed = r.placed[0];
          body.append(h('p', { class: 'result-line', id: 'image-result' }, badge(data.session ? data.session.result : 'success'),
            ` ${placed.from}: ${fmt.bytes(r.bytes)} written to `, h('span', { class: 'mono', id: 'image-result-path', text: placed.to })),
          data.session && data.session.log ? h('pre', { class: 'log', id: 'image-log', text: data.session.log.join('\n') }) : null);
        },
      },
    ],
  });
  replaceChildren(container, w.root);
}

/**
 * A point's marks: made by a run that looked like ransomware (with why, on hover and for
 * screen readers), or proven restorable by a restore test.
 */
function pointMarks(p) {
  const marks = [];
  if (p.suspicious && p.suspicious.length) {
    const b = badge('suspicious');
    b.id = `point-suspicious-${p.short_id}`;
    b.title = `The run that made this point looked like ransomware: ${p.suspicious.join('; ')}`;
    marks.push(h('br'), b, h('span', { class: 'visually-hidden', text: ` ${b.title}` }));
  }
  if (p.proven_ms) {
    const b = badge('proven');
    b.id = `point-proven-${p.short_id}`;
    b.title = `A restore test proved this point restorable on ${fmt.dateTime(p.proven_ms)}`;
    marks.push(h('br'), b);
  }
  return marks.length ? h('span', {}, marks) : null;
}
