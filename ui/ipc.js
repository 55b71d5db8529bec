// The only module that talks to the Rust side. Every command the console calls is a
// function here, so the rest of the UI never spells a command name or an argument.

/** An error from a command: `kind` is stable, `message` says what happened and what to do,
 *  `detail` carries more where the UI shows it (both certificates of a changed one). */
export class ConsoleError extends Error {
  constructor(kind, message, detail, remedy) {
    super(message);
    this.name = 'ConsoleError';
    this.kind = kind;
    this.detail = detail || null;
    this.remedy = remedy || null;
  }
}

function tauri() {
  const t = window.__TAURI__;
  if (!t || !t.core) {
    throw new ConsoleError('no_backend', 'The console backend is not available. Start the page from the Cloudkeep Console app.');
  }
  return t;
}

async function call(command, args) {
  const t = tauri();
  try {
    return await t.core.invoke(command, args);
  } catch (err) {
    if (err && typeof err === 'object' && typeof err.message === 'string') {
      throw new ConsoleError(err.kind || 'unknown', err.message, err.detail, err.remedy);
    }
    throw new ConsoleError('unknown', String(err));
  }
}

/** A channel whose messages go to `onEvent` (run progress, log lines, the end). */
function channel(onEvent) {
  const ch = new (tauri().core.Channel)();
  ch.onmessage = onEvent;
  return ch;
}

// App, logs, home.
export const appInfo = () => call('app_info');
export const inputRules = () => call('input_rules');
export const logTail = (lines) => call('log_tail', { lines });
export const startupWarnings = () => call('startup_warnings');
export const appReady = () => call('app_ready');
export const overview = (rescan) => call('overview', { rescan });

// Service providers and the lab.
export const providerProbe = (host) => call('provider_probe', { host });
export const providerAdd = (p) => call('provider_add', p);
export const providersList = () => call('providers_list');
export const providerRescan = (name) => call('provider_rescan', { name });
export const providerSetCredentials = (name, user, password) => call('provider_set_credentials', { name, user, password });
export const providerTrust = (name, fingerprint) => call('provider_trust', { name, fingerprint });
export const providerRemove = (name) => call('provider_remove', { name });
export const labStart = () => call('lab_start');
export const foundRepos = (provider) => call('found_repos', { provider });
export const foundJobs = (provider, repo, account, password) => call('found_jobs', { provider, repo, account: account || null, password: password || null });
export const foundAdopt = (provider, repo, account, job, password) => call('found_adopt', { provider, repo, account: account || null, job, password: password || null });
export const labSpConnect = () => call('lab_sp_connect');

// Jobs, runs and sessions.
export const jobsList = () => call('jobs_list');
export const jobGet = (name) => call('job_get', { name });
export const jobCreate = (name, spec, password) => call('job_create', { name, spec, password });
export const jobUpdate = (name, spec) => call('job_update', { name, spec });
export const jobDelete = (name) => call('job_delete', { name });
export const jobRun = (name, kind, onEvent) => call('job_run', { name, kind, onEvent: channel(onEvent) });
export const jobCompact = (name) => call('job_compact', { name });
export const jobKeys = (name) => call('job_keys', { name });
export const jobKeyRecovery = (name, path, label) => call('job_key_recovery', { name, path, label });
export const jobKeyPassword = (name, password) => call('job_key_password', { name, password });
export const jobWatch = (name, kind, onEvent) => call('job_watch', { name, kind, onEvent: channel(onEvent) });
export const jobStop = (name, kind) => call('job_stop', { name, kind });
export const runsList = () => call('runs_list');
export const sessionsList = (job) => call('sessions_list', { job: job || null });
export const sessionGet = (id) => call('session_get', { id });

// Restore points and restores.
export const pointsList = (job) => call('points_list', { job });
export const pointsRefresh = (job) => call('points_refresh', { job });
export const pointListDir = (job, point, path, offset, limit) =>
  call('point_list_dir', { job, point, path, offset, limit });
export const pointFind = (job, point, pattern) => call('point_find', { job, point, pattern });
export const pointDiff = (job, from, to) => call('point_diff', { job, from, to });
export const pointChanges = (job) => call('point_changes', { job });
export const pointDelete = (job, point) => call('point_delete', { job, point });
export const restoreStart = (r, onEvent) => call('restore_start', { ...r, onEvent: channel(onEvent) });
export const computerVolumes = () => call('computer_volumes');
export const imageTarget = (path) => call('image_target', { path });
export const imageRestoreStart = (r, onEvent) => call('image_restore_start', { ...r, onEvent: channel(onEvent) });

// Backup policies (tenant mode).
export const policiesList = () => call('policies_list');
export const policyTemplate = (repo) => call('policy_template', { repo });

// Notifications: this computer's (tenant mode) and the gateway's (SP mode).
export const notifyGet = () => call('notify_get');
export const notifySet = (channels) => call('notify_set', { channels });
export const notifyTest = () => call('notify_test');
export const spNotifyGet = () => call('sp_notify_get');
export const spNotifySet = (channels) => call('sp_notify_set', { channels });
export const spNotifyTest = () => call('sp_notify_test');
export const policyCreate = (name, provider, spec, password) => call('policy_create', { name, provider, spec, password });
export const policyUpdate = (name, spec) => call('policy_update', { name, spec });
export const policyDelete = (name, withData) => call('policy_delete', { name, withData });
export const policyAddComputer = (policy, computer) => call('policy_add_computer', { policy, computer });
export const policyRemoveComputer = (policy, computer, del) => call('policy_remove_computer', { policy, computer, delete: del });
export const policyEnrollFile = (policy, computer, path) => call('policy_enroll_file', { policy, computer, path });
export const policySync = (name) => call('policy_sync', { name });
export const policyComputerSessions = (policy, computer) => call('policy_computer_sessions', { policy, computer });

// Subtenants (tenant mode).
export const subtenantsList = (provider) => call('subtenants_list', { provider });
export const subtenantAdd = (provider, subtenant) => call('subtenant_add', { provider, subtenant });
export const subtenantSet = (provider, name, change) => call('subtenant_set', { provider, name, change });
export const subtenantDelete = (provider, name) => call('subtenant_delete', { provider, name });

// SP mode.
export const spSession = () => call('sp_session');
export const spConnect = (c) => call('sp_connect', c);
export const spDisconnect = () => call('sp_disconnect');
export const spTenants = () => call('sp_tenants');
export const spTenantAdd = (tenant) => call('sp_tenant_add', { tenant });
export const spTenantSettings = (login, settings) => call('sp_tenant_settings', { login, settings });
export const spTenantQuota = (login, quota) => call('sp_tenant_quota', { login, quota });
export const spTenantPassword = (login, password) => call('sp_tenant_password', { login, password });
export const spTenantDelete = (login, withData) => call('sp_tenant_delete', { login, withData });
export const spTenantHandoff = (login, password) => call('sp_tenant_handoff', { login, password: password || null });
export const spTenantHandoffSave = (login, password, path) => call('sp_tenant_handoff_save', { login, password: password || null, path });
export const spGeneratePassword = () => call('sp_generate_password');
// Cloud replication (SP mode): cloud hosts and hardware plans.
export const spHosts = () => call('sp_hosts');
export const spHostAdd = (name) => call('sp_host_add', { name });
export const spHostDetailsSave = (details, path) => call('sp_host_details_save', { details, path });
export const spHostRemove = (name) => call('sp_host_remove', { name });
export const spPlans = () => call('sp_plans');
export const spPlanAdd = (plan) => call('sp_plan_add', { plan });
export const spPlanRemove = (name) => call('sp_plan_remove', { name });
export const spPlanSubscription = (plan, tenant, subscribe) => call('sp_plan_subscription', { plan, tenant, subscribe });
export const spReplicas = () => call('sp_replicas');
export const spReplicaFailover = (tenant, name, test) => call('sp_replica_failover', { tenant, name, test });
// Cloud replication (tenant mode): plans, replicas and what is done to them.
export const replicationOverview = () => call('replication_overview');
export const replicaCreate = (replica) => call('replica_create', { replica });
export const replicaAct = (provider, name, action) => call('replica_act', { provider, name, action });
export const failoverPlanSave = (plan) => call('failover_plan_save', { plan });
export const failoverPlanAct = (name, action) => call('failover_plan_act', { name, action });
export const spRepos = () => call('sp_repos');
export const spRepoAdd = (name, path, s3 = null) => call('sp_repo_add', { name, path, s3 });
export const spRepoTest = (s3) => call('sp_repo_test', { s3 });
export const spRepoEdit = (name, edit) => call('sp_repo_edit', { name, edit });
export const spRepoRemove = (name) => call('sp_repo_remove', { name });
export const spMoveStart = (request) => call('sp_move_start', { request });
export const spMoves = () => call('sp_moves');
export const spGateways = () => call('sp_gateways');
export const spGatewayDrain = (id, draining) => call('sp_gateway_drain', { id, draining });
export const spCert = () => call('sp_cert');
export const spCertGenerate = (names) => call('sp_cert_generate', { names });
export const spCertImport = (chainPath, keyPath) => call('sp_cert_import', { chainPath, keyPath });
export const spAdmins = () => call('sp_admins');
export const spAdminAdd = (name, password) => call('sp_admin_add', { name, password });
export const spAdminRemove = (name) => call('sp_admin_remove', { name });
export const spAdminPassword = (name, password) => call('sp_admin_password', { name, password });
export const spCertNextInfo = () => call('sp_cert_next_info');
export const spCertNext = (names) => call('sp_cert_next', { names });
export const spCertRollover = () => call('sp_cert_rollover');
export const jobRestoreOrder = (job, order) => call('job_restore_order', { job, ...order });
export const jobRestoreOrders = (job) => call('job_restore_orders', { job });
export const spUsage = () => call('sp_usage');
export const spReclaim = () => call('sp_reclaim');
export const spUsageExport = (path) => call('sp_usage_export', { path });
export const spRecycleBin = () => call('sp_recycle_bin');
export const spRecycleRestore = (point) => call('sp_recycle_restore', { point });
export const spRecyclePurge = (point) => call('sp_recycle_purge', { point });
export const spMaintenance = () => call('sp_maintenance');
export const spSettings = () => call('sp_settings');
export const spSetSettings = (leaseGraceDays) => call('sp_set_settings', { leaseGraceDays });
export const spSetMaintenance = (message) => call('sp_set_maintenance', { message: message || null });
export const spCheck = (deep) => call('sp_check', { deep: !!deep });

// Backup files: a point exported into one portable file; a file opened for restores.
export const exportFileHint = (job, pointTimeMs) => call('export_file_hint', { job, pointTimeMs });
export const pointExportStart = (r, onEvent) => call('point_export_start', { ...r, onEvent: channel(onEvent) });
export const backupFileInfo = (path) => call('backup_file_info', { path });
export const backupFileOpen = (path, password) => call('backup_file_open', { path, password: password || null });

// Recovery media: a bootable ISO, into a file or onto a USB stick (its path typed to confirm).
export const recoveryMediaCreate = (r) => call('recovery_media_create', { ...r });

// Publishing restore points (read-only, at a folder).
export const publishFolderHint = (job, point) => call('publish_folder_hint', { job, point });
export const publicationsList = () => call('publications_list');
export const pointPublish = (job, point, folder, attach) => call('point_publish', { job, point, folder, attach: !!attach });
export const pointUnpublish = (folder) => call('point_unpublish', { folder });

// The desktop: native dialogs, the file manager.
export const pickFolder = (title) => call('pick_folder', { title });
export const pickFile = (title, extensions) => call('pick_file', { title, extensions: extensions || [] });
export const saveFile = (title, name) => call('save_file', { title, name });
export const openFolder = (path) => call('open_folder', { path });
