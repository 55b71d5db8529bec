// The only module that talks to the Rust side. Every command the console calls is a
// function here, so the rest of the UI never spells a command name or an argument.

/** An error from a command: `kind` is stable, `message` says what happened and what to do. */
export class ConsoleError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = 'ConsoleError';
    this.kind = kind;
  }
}

async function call(command, args) {
  const tauri = window.__TAURI__;
  if (!tauri || !tauri.core) {
    throw new ConsoleError('no_backend', 'The console backend is not available. Start the page from the Cloudkeep Console app.');
  }
  try {
    return await tauri.core.invoke(command, args);
  } catch (err) {
    if (err && typeof err === 'object' && typeof err.message === 'string') {
      throw new ConsoleError(err.kind || 'unknown', err.message);
    }
    throw new ConsoleError('unknown', String(err));
  }
}

/** Version, protocol versions, platform, data and log folders. */
export const appInfo = () => call('app_info');

/** The last `lines` lines of the console's newest log file: `{file, lines}`. */
export const logTail = (lines) => call('log_tail', { lines });

/** Problems found at startup that the user should see. */
export const startupWarnings = () => call('startup_warnings');
