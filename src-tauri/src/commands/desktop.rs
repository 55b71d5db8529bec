//! The desktop around the page: native dialogs (rfd) for choosing folders and files and for
//! saving, and opening a folder in the file manager. Dialogs are built on the main thread, as
//! GTK requires, and awaited here; the page gets a path or nothing (cancelled).

use std::path::PathBuf;

use tauri::{AppHandle, Manager};

use crate::error::CommandError;

/// What a dialog asks for.
enum Ask {
    Folder,
    File(Vec<String>),
    Save(String),
}

async fn dialog(app: &AppHandle, title: String, ask: Ask) -> Result<Option<String>, CommandError> {
    let (tx, rx) = tokio::sync::oneshot::channel::<Option<PathBuf>>();
    let window = app.get_webview_window("main");
    app.run_on_main_thread(move || {
        let mut dialog = rfd::AsyncFileDialog::new().set_title(&title);
        if let Some(window) = &window {
            dialog = dialog.set_parent(window);
        }
        let picked = match ask {
            Ask::Folder => Box::pin(dialog.pick_folder())
                as std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>>,
            Ask::File(extensions) if extensions.is_empty() => Box::pin(dialog.pick_file()),
            Ask::File(extensions) => Box::pin(dialog.add_filter("", &extensions).pick_file()),
            Ask::Save(name) => Box::pin(dialog.set_file_name(name).save_file()),
        };
        tauri::async_runtime::spawn(async move {
            let _ = tx.send(picked.await.map(|h| h.path().to_path_buf()));
        });
    })
    .map_err(|e| CommandError::failed(format!("cannot open the dialog: {e}")))?;
    let picked = rx
        .await
        .map_err(|_| CommandError::failed("the dialog closed without an answer"))?;
    Ok(picked.map(|p| p.display().to_string()))
}

/// A folder chosen in the native dialog, or nothing when cancelled.
#[tauri::command]
pub async fn pick_folder(app: AppHandle, title: String) -> Result<Option<String>, CommandError> {
    dialog(&app, title, Ask::Folder).await
}

/// A file chosen in the native dialog (of one of `extensions` when given).
#[tauri::command]
pub async fn pick_file(
    app: AppHandle,
    title: String,
    extensions: Vec<String>,
) -> Result<Option<String>, CommandError> {
    dialog(&app, title, Ask::File(extensions)).await
}

/// Where to save, chosen in the native dialog (`name` suggested).
#[tauri::command]
pub async fn save_file(
    app: AppHandle,
    title: String,
    name: String,
) -> Result<Option<String>, CommandError> {
    dialog(&app, title, Ask::Save(name)).await
}

/// Opens `path` (a folder) in the file manager.
#[tauri::command]
pub fn open_folder(path: String) -> Result<(), CommandError> {
    let folder = PathBuf::from(&path);
    if !folder.is_dir() {
        return Err(CommandError::invalid(format!(
            "{path} is not a folder on this computer"
        )));
    }
    let opener = if cfg!(windows) {
        "explorer"
    } else {
        "xdg-open"
    };
    std::process::Command::new(opener)
        .arg(&folder)
        .spawn()
        .map(|_| ())
        .map_err(|e| CommandError::failed(format!("cannot start {opener} to open {path}: {e}")))
}
